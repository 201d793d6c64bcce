"""Collections (create, list, delete, isolation) and scoped keys (every route and method, reload)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from api_helpers import API_KEY, assert_problem
from fastapi.testclient import TestClient

from api.main import create_app
from qa.config import Settings
from qa.keys import KeysFileError, add_key, key_line

ADMIN = {"Authorization": f"Bearer {API_KEY}"}  # a QA_API_KEYS key: every scope
ZEBRAS = "# Field notes\n\nThe zebra census counted 4,213 zebras on the northern plain.\n"
QUESTION = "How many zebras did the census count?"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_create_list_and_delete_a_collection(client, index_copy: Path) -> None:
    response = client.post("/v1/collections", json={"name": "wildlife"}, headers=ADMIN)
    assert response.status_code == 201 and response.json() == {"name": "wildlife", "require_key_for_reads": False}
    assert (index_copy / "collections" / "wildlife" / "collection.json").is_file()
    assert client.get("/v1/collections").json() == {
        "collections": [
            {"name": "default", "require_key_for_reads": False},
            {"name": "wildlife", "require_key_for_reads": False},
        ]
    }
    # A new collection is empty, answers from nothing, and takes documents.
    assert client.get("/v1/collections/wildlife/documents").json()["total"] == 0
    assert client.post("/v1/collections/wildlife/ask", json={"question": QUESTION}).json()["answerable"] is False
    body = {"document_id": "zebras.md", "text": ZEBRAS}
    assert client.post("/v1/collections/wildlife/documents", json=body, headers=ADMIN).status_code == 201
    # The client's hashing embedder makes the confidence meaningless, so the quote is read from the citations.
    answer = client.get("/v1/collections/wildlife/ask", params={"q": QUESTION}).json()
    first = answer["citations"][0]
    assert first["document_id"] == "zebras.md"
    assert first["quote"] == "The zebra census counted 4,213 zebras on the northern plain."
    assert client.delete("/v1/collections/wildlife", headers=ADMIN).status_code == 204
    assert not (index_copy / "collections" / "wildlife").exists()
    assert_problem(client.get("/v1/collections/wildlife/documents"), 404, "there is no such collection")
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["default"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("post", "/v1/collections", {"name": "default"}, 409, "already exists"),
        ("post", "/v1/collections", {"name": "Bad Name"}, 422, None),
        ("post", "/v1/collections", {"name": "-x"}, 422, None),
        ("post", "/v1/collections", {"name": "a" * 65}, 422, None),
        ("post", "/v1/collections", {"name": "x", "extra": 1}, 422, None),
        ("delete", "/v1/collections/default", None, 409, "cannot be deleted"),
        ("delete", "/v1/collections/nothere", None, 404, "there is no such collection"),
        ("delete", "/v1/collections/Bad", None, 422, None),
        ("get", "/v1/collections/nothere/ask?q=hello", None, 404, "there is no such collection"),
        ("get", "/v1/collections/BAD/search?q=hello", None, 422, None),
        ("get", "/v1/collections/nothere/view/a.md", None, 404, None),
    ],
)
def test_bad_collection_requests_are_problems(client, method, path, body, status, detail) -> None:
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(path, headers=ADMIN, **kwargs)
    assert_problem(response, status, detail)


def test_a_duplicate_create_is_a_409(client) -> None:
    assert client.post("/v1/collections", json={"name": "twice"}, headers=ADMIN).status_code == 201
    assert_problem(client.post("/v1/collections", json={"name": "twice"}, headers=ADMIN), 409, "already exists")


def test_a_document_in_one_collection_is_never_cited_from_another(client) -> None:
    """Isolation: ask, search, documents and passages of one collection never reach another's documents."""
    for name in ("left", "right"):
        assert client.post("/v1/collections", json={"name": name}, headers=ADMIN).status_code == 201
    body = {"document_id": "zebras.md", "text": ZEBRAS}
    assert client.post("/v1/collections/left/documents", json=body, headers=ADMIN).status_code == 201
    left = client.post("/v1/collections/left/ask", json={"question": QUESTION}).json()
    assert left["citations"][0]["document_id"] == "zebras.md"
    passage_id = left["citations"][0]["passage_id"]
    for prefix in ("/v1", "/v1/collections/right", "/v1/collections/default"):
        answer = client.post(f"{prefix}/ask", json={"question": QUESTION}).json()
        assert "zebras.md" not in {c["document_id"] for c in answer["citations"]}
        hits = client.get(f"{prefix}/search", params={"q": "zebra census", "k": 50}).json()["results"]
        assert "zebras.md" not in {h["document_id"] for h in hits}
        assert client.get(f"{prefix}/documents/zebras.md").status_code == 404
        assert client.get(f"{prefix}/passages/{passage_id}").status_code == 404
    assert client.get("/v1/collections/left/passages/" + passage_id).json()["document_id"] == "zebras.md"
    assert client.get("/v1/collections/left/view/zebras.md").status_code == 200
    assert client.get("/view/zebras.md").status_code == 404


def test_metrics_carry_the_collection(client) -> None:
    client.post("/v1/collections", json={"name": "counted"}, headers=ADMIN)
    client.get("/v1/collections/counted/documents")
    client.get("/v1/collections/nothere/documents")
    text = client.get("/metrics").text
    assert (
        'qa_http_requests_total{collection="counted",method="GET",'
        'route="/v1/collections/{collection}/documents",status="200"} 1.0' in text
    )
    assert 'collection="unknown",method="GET",route="/v1/collections/{collection}/documents",status="404"' in text
    assert 'qa_index_passages{collection="counted"} 0.0' in text


# ---- scopes ----------------------------------------------------------------------------------------

KEYS = {
    "read-a": "qa_read_a_key",
    "write-a": "qa_write_a_key",
    "read-all": "qa_read_all_key",
    "write-all": "qa_write_all_key",
    "admin": "qa_admin_key",
}
SCOPES = {"read-a": ["read:a"], "write-a": ["write:a"], "read-all": ["read:*"], "write-all": ["write:*"],
          "admin": ["admin"]}  # fmt: skip


@pytest.fixture
def scoped(index_copy: Path, hash_embedder, tmp_path: Path):
    """An app with a keys file of five scoped keys, a QA_API_KEYS key, and collections a (reads need a key)
    and b (open)."""
    keys_file = tmp_path / "keys"
    keys_file.write_text("".join(key_line(KEYS[name], SCOPES[name]) + "\n" for name in KEYS))
    settings = Settings(index_dir=index_copy, keys_file=keys_file, api_keys=[API_KEY])
    with TestClient(create_app(settings, embedder=hash_embedder)) as client:
        client.post("/v1/collections", json={"name": "a", "require_key_for_reads": True}, headers=ADMIN)
        client.post("/v1/collections", json={"name": "b"}, headers=ADMIN)
        yield client


# (method, path, body) of every route, with a request that changes nothing when it is let through:
# reads of what exists; writes of what is invalid (422) or absent (404).
ROUTES = {
    "ask": ("post", "/v1/collections/{c}/ask", {"question": "census?"}, 200),
    "ask-get": ("get", "/v1/collections/{c}/ask?q=census", None, 200),
    "search": ("get", "/v1/collections/{c}/search?q=census", None, 200),
    "documents": ("get", "/v1/collections/{c}/documents", None, 200),
    "document": ("get", "/v1/collections/{c}/documents/none.md", None, 404),
    "passage": ("get", "/v1/collections/{c}/passages/none", None, 404),
    "view": ("get", "/v1/collections/{c}/view/none.md", None, 404),
    "add": ("post", "/v1/collections/{c}/documents", {"document_id": "x.md"}, 422),
    "delete": ("delete", "/v1/collections/{c}/documents/none.md", None, 404),
    "create": ("post", "/v1/collections", {"name": "Bad Name"}, 422),
    "drop": ("delete", "/v1/collections/nothere", None, 404),
}
READS = ("ask", "ask-get", "search", "documents", "document", "passage", "view")
WRITES = ("add", "delete")
ADMINS = ("create", "drop")
# Which keys pass, for each kind of route, on collection a (reads need a key) and b (open reads).
ALLOWED = {
    ("read", "a"): {"read-a", "write-a", "read-all", "write-all", "plain"},
    ("read", "b"): {"read-a", "write-a", "read-all", "write-all", "admin", "plain", "none", "wrong"},
    ("write", "a"): {"write-a", "write-all", "plain"},
    ("write", "b"): {"write-all", "plain"},
    ("admin", "a"): {"admin", "plain"},
}


def _cases():
    for route, (method, path, body, ok) in ROUTES.items():
        kind = "read" if route in READS else "write" if route in WRITES else "admin"
        for collection in ("a", "b") if kind != "admin" else ("a",):
            for who in [*KEYS, "plain", "none", "wrong"]:
                passes = who in ALLOWED[(kind, collection)]
                if passes:
                    expected = ok
                elif who == "none":
                    expected = 401
                else:
                    expected = 403
                needed = "admin" if kind == "admin" else f"{kind}:{collection}"
                yield pytest.param(method, path.format(c=collection), body, who, expected, needed,
                                   id=f"{route}-{collection}-{who}")  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "who", "expected", "needed"), list(_cases()))
def test_every_route_checks_the_key_scope(scoped, method, path, body, who, expected, needed) -> None:
    """A table of every route and method against every kind of key: the status, and a 403 that names the scope."""
    special = {"none": {}, "wrong": _auth("qa_not_a_key"), "plain": ADMIN}
    headers = special[who] if who in special else _auth(KEYS[who])
    kwargs = {"json": body} if body is not None else {}
    response = getattr(scoped, method)(path, headers=headers, **kwargs)
    assert response.status_code == expected, response.text
    if expected == 403:
        detail = (
            "the API key is not valid" if who == "wrong" else f"the API key lacks the scope {needed!r} that this needs"
        )
        assert response.json()["detail"] == detail
    if response.status_code >= 400:
        assert not any(key in response.text for key in [*KEYS.values(), API_KEY])


def test_listing_shows_the_collections_a_key_may_read(scoped) -> None:
    def names(headers: dict[str, str]) -> list[str]:
        return [c["name"] for c in scoped.get("/v1/collections", headers=headers).json()["collections"]]

    assert names({}) == ["default", "b"]
    assert names(_auth(KEYS["read-a"])) == ["default", "a", "b"]
    assert names(_auth(KEYS["admin"])) == ["default", "a", "b"]


def test_the_keys_file_is_reread_without_a_restart(scoped, tmp_path: Path) -> None:
    """A key added to the file works within a second; the server keeps the last good file if it breaks."""
    keys_file = tmp_path / "keys"
    new = add_key(keys_file, ["write:b"])
    time.sleep(1.1)  # the file's stat is checked at most once a second
    body = {"document_id": "zebras.md", "text": ZEBRAS}
    assert scoped.post("/v1/collections/b/documents", json=body, headers=_auth(new)).status_code == 201
    keys_file.write_text("not a keys file\n")
    time.sleep(1.1)
    assert scoped.delete("/v1/collections/b/documents/zebras.md", headers=_auth(new)).status_code == 204


def test_a_malformed_keys_file_stops_the_start(index_copy: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("sha256:abc read:a\n")
    with pytest.raises(KeysFileError, match="line 1"):
        create_app(Settings(index_dir=index_copy, keys_file=keys_file))


def test_require_key_for_reads_covers_every_collection(make_client) -> None:
    """QA_REQUIRE_KEY_FOR_READS is server-wide: a collection made without its own flag still needs the key."""
    client = make_client(api_keys=[API_KEY], require_key_for_reads=True)
    assert client.post("/v1/collections", json={"name": "open"}, headers=ADMIN).status_code == 201
    assert_problem(client.get("/v1/collections/open/documents"), 401, "an API key is required")
    assert_problem(client.post("/v1/collections/open/verify", json={"citations": []}), 401)
    assert client.get("/v1/collections/open/documents", headers=ADMIN).status_code == 200
    assert client.get("/v1/collections").json() == {"collections": []}  # nothing readable without a key
    listed = client.get("/v1/collections", headers=ADMIN).json()["collections"]
    assert [c["name"] for c in listed] == ["default", "open"]


def test_a_verify_of_10000_citations_fits_the_body_limit(client) -> None:
    """10,000 citations with quotes are over QA_MAX_BODY_BYTES but within QA_MAX_VERIFY_BYTES; 10,001 is a 422."""
    citation = {"document_id": "immigration-data-sharing.txt", "quote": "x" * 150, "start": 0, "end": 150}
    body = {"citations": [citation] * 10_000}
    response = client.post("/v1/verify", json=body)
    assert response.status_code == 200 and len(response.json()["results"]) == 10_000
    assert_problem(client.post("/v1/verify", json={"citations": [citation] * 10_001}), 422)


@pytest.mark.parametrize(
    ("who", "expected"),
    [("none", 401), ("wrong", 403), ("read-a", 403), ("write-a", 403), ("read-all", 404), ("admin", 404),
     ("plain", 404)],
)  # fmt: skip
def test_an_unknown_collection_is_answered_as_a_private_one_would_be(scoped, who, expected) -> None:
    """While collection a needs a key to be read, a caller who could not read a private collection named
    "nothere" gets the 401 or 403 it would get, not a 404 that would tell the two apart."""
    special = {"none": {}, "wrong": _auth("qa_not_a_key"), "plain": ADMIN}
    headers = special[who] if who in special else _auth(KEYS[who])
    for path in ("/v1/collections/nothere/documents", "/v1/collections/nothere/ask?q=census"):
        response = scoped.get(path, headers=headers)
        assert response.status_code == expected, response.text
        if expected == 404:
            assert response.json()["detail"] == "there is no such collection"  # the name is not repeated


def test_an_unknown_collection_is_a_404_while_every_collection_is_open(client) -> None:
    assert_problem(client.get("/v1/collections/nothere/documents"), 404, "there is no such collection")


def test_a_collection_created_again_as_private_is_private_in_every_process(index_copy: Path, hash_embedder) -> None:
    """Deleted and created again with a read rule by one app, a collection that another app on the same index
    had open is opened again there: its new rule applies and its old documents are gone."""
    settings = Settings(index_dir=index_copy, api_keys=[API_KEY])
    with TestClient(create_app(settings, embedder=hash_embedder)) as one, \
            TestClient(create_app(settings, embedder=hash_embedder)) as other:  # fmt: skip
        assert one.post("/v1/collections", json={"name": "team"}, headers=ADMIN).status_code == 201
        body = {"document_id": "zebras.md", "text": ZEBRAS}
        assert one.post("/v1/collections/team/documents", json=body, headers=ADMIN).status_code == 201
        assert other.get("/v1/collections/team/documents").json()["total"] == 1  # the other app has it open
        assert one.delete("/v1/collections/team", headers=ADMIN).status_code == 204
        created = one.post("/v1/collections", json={"name": "team", "require_key_for_reads": True}, headers=ADMIN)
        assert created.status_code == 201
        body = {"document_id": "salaries.md", "text": "# Pay\n\nThe director earns 90,000 dollars a year.\n"}
        assert one.post("/v1/collections/team/documents", json=body, headers=ADMIN).status_code == 201
        for path in ("/v1/collections/team/documents", "/v1/collections/team/ask?q=salary"):
            assert_problem(other.get(path), 401, "an API key is required")
        listed = other.get("/v1/collections/team/documents", headers=ADMIN).json()
        assert [d["document_id"] for d in listed["documents"]] == ["salaries.md"]


def test_a_private_collection_is_not_opened_for_a_caller_who_may_not_read_it(index_copy: Path, hash_embedder) -> None:
    """Opening a collection loads its index: requests without a key must not make the process load it."""
    settings = Settings(index_dir=index_copy, api_keys=[API_KEY])
    with TestClient(create_app(settings, embedder=hash_embedder)) as maker:
        assert maker.post("/v1/collections", json={"name": "hr", "require_key_for_reads": True}, headers=ADMIN)
    with TestClient(create_app(settings, embedder=hash_embedder)) as client:
        collections = client.app.state.collections  # type: ignore[attr-defined]
        for path in ("/v1/collections/hr/documents", "/v1/collections/hr/ask?q=pay", "/v1/collections/hr/view/a.md"):
            assert client.get(path).status_code == 401
        assert client.get("/v1/collections/hr/documents", headers=_auth("qa_not_a_key")).status_code == 403
        assert "hr" not in collections.services
        assert client.get("/v1/collections/hr/documents", headers=ADMIN).status_code == 200
        assert "hr" in collections.services
