"""Adding and deleting documents: the index, the durable sources, recovery, other workers."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from api_helpers import API_KEY, assert_problem

from qa.build import update_index
from qa.embed import HashEmbedder
from qa.ingest import parse_document
from qa.sources import StoredSource, read_source, source_path, write_source
from qa.storage import load_index, save_index, writer_lock
from qa.writes import MERGE_FACTOR, merge_plan

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NOTE = "# Field notes\n\nThe zebra census counted 4,213 zebras on the northern plain.\n"


def test_json_upload_is_indexed_stored_and_answerable(client, index_copy: Path) -> None:
    response = client.post("/v1/documents", json={"document_id": "notes/zebras.md", "text": NOTE}, headers=AUTH)
    assert response.status_code == 201
    assert response.json() == {"document_id": "notes/zebras.md", "passages": 1}
    answer = client.post("/v1/ask", json={"question": "How many zebras did the census count?", "top_k": 1}).json()
    assert answer["answer"] == "The zebra census counted 4,213 zebras on the northern plain."
    assert answer["citations"][0]["document_id"] == "notes/zebras.md"
    document = client.get("/v1/documents/notes/zebras.md").json()
    assert document["title"] == "Field notes" and document["text"] == NOTE and document["format"] == "md"
    # The source is stored under a hash of the id, never under the id itself.
    stored = index_copy / "sources" / (hashlib.sha256(b"notes/zebras.md").hexdigest() + ".src")
    assert read_source(stored) == StoredSource("notes/zebras.md", None, NOTE.encode())
    assert not (index_copy / "notes").exists()
    # The index on disk is the new one, so a restart serves it.
    assert "notes/zebras.md" in load_index(index_copy, model="hash-64").documents


def test_multipart_upload_defaults_id_to_file_name(client) -> None:
    files = {"file": ("zebras.txt", NOTE.encode(), "text/plain")}
    response = client.post("/v1/documents", files=files, data={"title": "Zebra census"}, headers=AUTH)
    assert response.status_code == 201 and response.json() == {"document_id": "zebras.txt", "passages": 1}
    listing = client.get("/v1/documents").json()
    assert [d["document_id"] for d in listing["documents"]] == ["immigration-data-sharing.txt", "zebras.txt"]
    assert listing["documents"][1]["title"] == "Zebra census"
    files = {"file": ("ignored.txt", NOTE.encode())}
    response = client.post("/v1/documents", files=files, data={"document_id": "a/b.txt"}, headers=AUTH)
    assert response.json() == {"document_id": "a/b.txt", "passages": 1}


def test_html_upload_is_parsed_as_html(client) -> None:
    html = b"<html><body><h1>Birds</h1><p>The heron colony has 58 nests.</p><script>x()</script></body></html>"
    response = client.post("/v1/documents", files={"file": ("birds.html", html)}, headers=AUTH)
    assert response.status_code == 201
    document = client.get("/v1/documents/birds.html").json()
    assert document["format"] == "html" and "x()" not in document["text"] and "58 nests" in document["text"]


def test_replace_then_delete(client, index_copy: Path) -> None:
    client.post("/v1/documents", json={"document_id": "z.md", "text": NOTE}, headers=AUTH)
    replaced = NOTE.replace("4,213", "5,000")
    assert client.post("/v1/documents", json={"document_id": "z.md", "text": replaced}, headers=AUTH).status_code == 201
    assert client.get("/v1/documents/z.md").json()["text"] == replaced
    assert client.get("/v1/documents").json()["total"] == 2
    response = client.delete("/v1/documents/z.md", headers=AUTH)
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get("/v1/documents/z.md"), 404)
    # The upload's record is now its tombstone: a later `qa index` keeps the document out.
    assert read_source(source_path(index_copy, "z.md")).deleted
    assert client.get("/readyz").json()["documents"] == 1


def test_deleting_a_corpus_document_leaves_an_empty_index(client) -> None:
    assert client.delete("/v1/documents/immigration-data-sharing.txt", headers=AUTH).status_code == 204
    assert client.get("/readyz").json() == {"status": "ready", "documents": 0, "passages": 0, "model": "hash-64"}
    assert client.get("/v1/search?q=fusion").json() == {"query": "fusion", "results": []}
    assert client.get("/v1/ask?q=fusion").json()["answerable"] is False


def test_stored_source_missing_from_index_is_readded_at_startup(make_client, index_copy: Path) -> None:
    """A crash after the 201 (source stored) but before the index was saved loses nothing."""
    write_source(index_copy, StoredSource("crash/zebras.md", "Recovered", NOTE.encode()))
    client = make_client()
    document = client.get("/v1/documents/crash/zebras.md").json()
    assert document["title"] == "Recovered" and document["text"] == NOTE
    assert "crash/zebras.md" in load_index(index_copy, model="hash-64").documents


def test_writes_from_another_process_are_served_at_once(client, index_copy: Path) -> None:
    """Another worker (qa serve --workers N) commits: this one serves it from the next request on."""
    embedder = HashEmbedder()
    with writer_lock(index_copy):
        index = load_index(index_copy, model=embedder.name)
        doc = parse_document("other.md", NOTE.encode())
        save_index(update_index(index, embedder, add=[doc]), index_copy)
    assert client.get("/v1/documents/other.md").status_code == 200
    # A write here starts from the newest commit, so the other worker's document survives it.
    client.post("/v1/documents", json={"document_id": "mine.md", "text": NOTE}, headers=AUTH)
    ids = [d["document_id"] for d in client.get("/v1/documents").json()["documents"]]
    assert ids == ["immigration-data-sharing.txt", "mine.md", "other.md"]


def test_index_built_after_startup_makes_the_app_ready(make_client, index_copy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "later"
    client = make_client(index_dir=empty)
    assert_problem(client.get("/readyz"), 503)
    empty.mkdir()
    (empty / "segments").symlink_to(index_copy / "segments")
    (empty / "commits").symlink_to(index_copy / "commits")
    (empty / "current").symlink_to(Path("commits") / (index_copy / "current").readlink().name)
    assert client.get("/readyz").status_code == 200


def test_a_broken_new_commit_leaves_the_served_index_in_place(client, index_copy: Path, caplog) -> None:
    broken = index_copy / "commits" / "99999999.json"
    broken.write_text("{not json", encoding="utf-8")
    (index_copy / "current.tmp").symlink_to(Path("commits") / broken.name)
    (index_copy / "current.tmp").replace(index_copy / "current")
    for _ in range(3):
        assert client.get("/readyz").json()["documents"] == 1
        assert client.get("/v1/search?q=fusion").status_code == 200
    # Tried once, not on every request.
    failures = [r.message for r in caplog.records if "cannot load the current commit" in r.message]
    assert len(failures) == 1 and str(broken.resolve()) in failures[0]


def test_writes_add_segments_that_merge_in_the_background(client, index_copy: Path) -> None:
    """Each write is a segment of its own; once MERGE_FACTOR segments share a tier, a background merge
    rewrites them as one, and every document stays answerable throughout."""
    ids = [f"herd/{i:02d}.md" for i in range(MERGE_FACTOR + 1)]
    for i, doc in enumerate(ids):
        text = f"# Herd {i}\n\nThe herd census counted {100 + i} goats on ridge {i}.\n"
        assert client.post("/v1/documents", json={"document_id": doc, "text": text}, headers=AUTH).status_code == 201
        assert client.get(f"/v1/documents/{doc}").status_code == 200
    deadline = time.monotonic() + 60
    while merge_plan(index := load_index(index_copy, model="hash-64")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert merge_plan(index) == ()
    assert len(index.segments) < len(ids)  # the one-passage segments were merged
    listed = client.get("/v1/documents").json()["documents"]
    assert [d["document_id"] for d in listed] == [*ids, "immigration-data-sharing.txt"]
    answer = client.post("/v1/ask", json={"question": "How many goats did the census count on ridge 7?"}).json()
    assert "107 goats" in answer["answer"] and answer["citations"][0]["document_id"] == "herd/07.md"
