"""Attacks on a running server, as an outsider and as a key holder: each defect once found, now a check.

* **Reads that need a key** (``QA_REQUIRE_KEY_FOR_READS``): every route and method of the app, taken from
  its route list so that a new route cannot be forgotten, either answers 401 without a key or is one of the
  few public routes, whose responses hold no document content.
* **Rebuilds under a live server**: ``qa index`` (``qa.indexing.index_corpus``) of the corpus directory keeps
  the documents uploaded through the API and keeps deleted ones out, and the server ends with exactly the
  acknowledged documents.
* **Work a write may cause**: passages per document and texts per write are capped (413 naming the limit)
  and a parse is stopped at its deadline (422), so a small request cannot hold the writer for long.
* **Low-severity leaks**: ``X-Forwarded-For`` is not trusted by default; 404s do not repeat the id asked
  for; /readyz shows no path; the demo page never reflects the ``Host`` header; confusable ids are one id
  or refused; a key in the query string is refused and never reaches the access log.

Figures go to the ``attacks`` section of docs/reliability.md.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pdf_helpers import SLOW_PDF
from reliability_helpers import API_KEY, QaServe, assert_problem, live_server
from starlette.routing import Route

from qa.cli import uvicorn_options
from qa.config import Settings
from qa.embed import HashEmbedder
from qa.indexing import index_corpus
from qa.sources import read_source, source_path

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC_ID = "immigration-data-sharing.txt"
# Routes anyone may call with QA_REQUIRE_KEY_FOR_READS set: probes, metrics, the API's description and
# static files. None of them shows a document's id, title or text (checked below).
PUBLIC = {
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/metrics", "GET"),
    ("/widget.js", "GET"),
    ("/widget.js", "HEAD"),
    ("/static/{name}", "GET"),
    ("/docs", "GET"),
    ("/docs/assets/{name}", "GET"),
    ("/openapi.json", "GET"),
    ("/openapi.json", "HEAD"),
    # the collections the caller may read: none without a key when reads need one
    ("/v1/collections", "GET"),
}
# A value for each path parameter, so each route reaches its handler.
PATH_VALUES = {"document_id": DOC_ID, "name": "widget.js", "collection": "default"}


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (path template, method) the app serves (``app.state.routes``: FastAPI nests included routers)."""
    found = set()
    for route in app.state.routes:
        if isinstance(route, Route) and route.methods:
            found |= {(route.path, method) for method in route.methods}
    return sorted(found)


def _url(template: str, passage_id: str) -> str:
    values = {**PATH_VALUES, "passage_id": passage_id}
    url = template.replace(":path}", "}")
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    return url


# ---- 1. every route that shows document content obeys the read rule -----------------------------


def test_every_route_needs_the_key_or_shows_no_content(
    make_app: Callable[..., FastAPI], figure: Callable[..., None]
) -> None:
    app = make_app(api_keys=[API_KEY], require_key_for_reads=True)
    with TestClient(app) as client:
        hit = client.get("/v1/search?q=fusion", headers=AUTH).json()["results"][0]
        passage_id, passage_text = hit["passage_id"], hit["text"]
        title = client.get(f"/v1/documents/{DOC_ID}", headers=AUTH).json()["title"]
        routes = _routes(app)
        leaks, open_routes = [], set()
        for template, method in routes:
            response = client.request(method, _url(template, passage_id))
            if response.status_code == 401:
                assert_problem(response, 401, "an API key is required")
                assert response.headers["www-authenticate"] == "Bearer"
                continue
            open_routes.add((template, method))
            if any(content in response.text for content in (DOC_ID, title, passage_text)):
                leaks.append(f"{method} {template}")
        # With the key, the same content routes answer.
        assert client.get("/", headers=AUTH).status_code == 200
        viewer = client.get(f"/view/{DOC_ID}", headers=AUTH)
        assert viewer.status_code == 200 and title in viewer.text
    assert leaks == []
    assert open_routes == PUBLIC, "a route is open without a key: make it need one, or add it to PUBLIC"
    figure("attacks", routes_checked=len(routes), routes_leaking_content_without_key=len(leaks))


def test_pages_stay_open_when_reads_need_no_key(make_app: Callable[..., FastAPI]) -> None:
    """The default (open reads) is unchanged: the demo page lists the documents, the viewer shows them."""
    with TestClient(make_app()) as client:
        assert DOC_ID in client.get("/").text
        assert client.get(f"/view/{DOC_ID}").status_code == 200


# ---- 2. `qa index` under a live server keeps the acknowledged documents ---------------------------

NOTE = "# Llama notes\n\n## Grazing\n\nThe llama herd grazes on the northern ridge every morning.\n"


def _ids(client: TestClient) -> list[str]:
    return [d["document_id"] for d in client.get("/v1/documents").json()["documents"]]


def test_a_rebuild_under_a_live_server_keeps_uploads_and_deletions(
    make_app: Callable[..., FastAPI], index_copy: Path, tmp_path: Path, figure: Callable[..., None]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / DOC_ID).write_bytes((ROOT / "corpus" / DOC_ID).read_bytes())
    (corpus / "extra.md").write_text("# Extra\n\nA second corpus file about alpacas.\n", encoding="utf-8")
    embedder = HashEmbedder()
    with TestClient(make_app(api_keys=[API_KEY])) as client:
        body = {"document_id": "notes/llamas.md", "text": NOTE}
        assert client.post("/v1/documents", json=body, headers=AUTH).status_code == 201
        messages: list[str] = []
        report = index_corpus(corpus, index_copy, embedder=embedder, log=messages.append)
        assert not report.skipped and report.n_documents == 3
        assert messages == [f"kept 1 uploaded document(s), left out 0 deleted through the API ({index_copy}/sources)"]
        # The server picks the new build up on its next request, uploads included.
        assert _ids(client) == ["extra.md", DOC_ID, "notes/llamas.md"]
        assert client.get("/v1/documents/notes/llamas.md").json()["text"] == NOTE
        # Nothing changed since: the rebuild is skipped (the uploads are part of the corpus checksum).
        assert index_corpus(corpus, index_copy, embedder=embedder).skipped
        # Deleting an upload and a corpus file through the API: a later rebuild keeps both out.
        assert client.delete("/v1/documents/notes/llamas.md", headers=AUTH).status_code == 204
        assert client.delete("/v1/documents/extra.md", headers=AUTH).status_code == 204
        assert read_source(source_path(index_copy, "extra.md")).deleted
        report = index_corpus(corpus, index_copy, embedder=embedder)
        assert report.n_documents == 1
        assert _ids(client) == [DOC_ID]
        assert_problem(client.get("/v1/documents/notes/llamas.md"), 404)
        # Uploading a deleted id again brings it back, for the server and for the next rebuild.
        assert client.post("/v1/documents", json=body, headers=AUTH).status_code == 201
        index_corpus(corpus, index_copy, embedder=embedder, force=True)
        assert _ids(client) == [DOC_ID, "notes/llamas.md"]
    # A restart serves the same documents.
    with TestClient(make_app(api_keys=[API_KEY])) as client:
        assert _ids(client) == [DOC_ID, "notes/llamas.md"]
    figure("attacks", rebuilds_under_live_server=4, acknowledged_documents_lost_by_rebuild=0)


# ---- 3. read-your-writes across worker processes ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.model
def test_two_workers_serve_every_acknowledged_write_and_delete_at_once(
    model_index_dir: Path, tmp_path: Path, figure: Callable[..., None]
) -> None:
    """Two `qa serve` processes on one index directory (what `--workers 2` runs, but each addressable),
    three concurrent writers: every document is readable from both right after its 201, and gone from
    both right after its 204, also while the reading process has a write of its own waiting."""
    index_dir = tmp_path / "index"
    shutil.copytree(model_index_dir, index_dir, symlinks=True)
    # Three writers queue on one writer lock: the deadline is lifted so a slow machine cannot turn a wait
    # into a 503 (this test is about what is seen after a 201 or a 204, not about deadlines).
    settings = {"QA_API_KEYS": API_KEY, "QA_REQUEST_TIMEOUT": "300"}
    servers = [QaServe(index_dir, tmp_path / "serve.log", **settings) for _ in range(2)]
    stale: list[str] = []

    def writer(w: int) -> tuple[int, int]:
        writes = deletes = 0
        for i in range(10):
            doc = f"w{w}/note{i}.md"
            via, other = servers[(w + i) % 2], servers[(w + i + 1) % 2]
            body = {"document_id": doc, "text": f"# Note\n\nWriter {w} counted {i} goats on the ridge.\n"}
            response = httpx.post(f"{via.url}/v1/documents", json=body, headers=AUTH, timeout=120)
            assert response.status_code == 201, response.text
            writes += 1
            stale.extend(f"{doc} missing on {s.url}" for s in servers if _status(s, doc) != 200)
            if i % 3 == 0:
                response = httpx.delete(f"{other.url}/v1/documents/{doc}", headers=AUTH, timeout=120)
                assert response.status_code == 204, response.text
                deletes += 1
                stale.extend(f"{doc} still served by {s.url}" for s in servers if _status(s, doc) != 404)
        return writes, deletes

    try:
        for server in servers:
            server.wait()
        with ThreadPoolExecutor(3) as pool:
            done = list(pool.map(writer, range(3)))
        expected = sorted(f"w{w}/note{i}.md" for w in range(3) for i in range(10) if i % 3) + [DOC_ID]
        for server in servers:
            listed = httpx.get(f"{server.url}/v1/documents", params={"limit": 100}, timeout=60).json()["documents"]
            assert sorted(d["document_id"] for d in listed) == sorted(expected)
    finally:
        for server in servers:
            server.stop()
    assert stale == []
    writes, deletes = sum(d[0] for d in done), sum(d[1] for d in done)
    figure("attacks", worker_writes=writes, worker_deletes=deletes, worker_reads=2 * (writes + deletes), stale_reads=0)


def _status(server: QaServe, document_id: str) -> int:
    return httpx.get(f"{server.url}/v1/documents/{document_id}", timeout=60).status_code


# ---- 4. bounded work per write --------------------------------------------------------------------


def test_a_document_of_too_many_passages_is_refused_before_it_is_embedded(
    make_app: Callable[..., FastAPI], figure: Callable[..., None]
) -> None:
    """54 KB of ``<p>w1</p><p>w2</p>...`` makes 5,001 passages, which held the writer; now a 413 names the limit.
    (The first flood, ``w1<br>w2<br>...`` in one paragraph, is one paragraph since a ``<br>`` breaks a line.)"""
    html = "<html><body>" + "".join(f"<p>w{i}</p>" for i in range(1, 5002)) + "</body></html>"
    with TestClient(make_app(api_keys=[API_KEY])) as client:
        body = {"document_id": "flood.html", "text": html}
        started = time.monotonic()
        response = client.post("/v1/documents", json=body, headers=AUTH)
        refused_in = time.monotonic() - started
        body_json = assert_problem(response, 413)
        assert body_json["detail"].startswith("the document makes 5,001 passages; one document may make at most 500")
        assert body_json["detail"].endswith("(QA_MAX_DOCUMENT_PASSAGES)")
        assert_problem(client.get("/v1/documents/flood.html"), 404)
        small = {"document_id": "small.md", "text": NOTE}
        assert client.post("/v1/documents", json=small, headers=AUTH).status_code == 201
    with TestClient(make_app(api_keys=[API_KEY], max_write_texts=3)) as client:
        three = {"document_id": "b.md", "text": "# B\n\nOne goat. Two goats. Three goats.\n"}  # a passage, 3 sentences
        response = client.post("/v1/documents", json=three, headers=AUTH)
        assert_problem(response, 413, "the document makes 4 texts to embed")
        assert "at most 3 (QA_MAX_WRITE_TEXTS)" in response.json()["detail"]
    figure("attacks", flood_passages=5001, flood_refused_in_s=round(refused_in, 2))


def test_a_parse_past_its_deadline_is_stopped(make_app: Callable[..., FastAPI], figure: Callable[..., None]) -> None:
    """A 4 KB PDF that keeps pypdf busy for seconds: 422 at QA_PARSE_TIMEOUT, and no parse left running."""
    with TestClient(make_app(api_keys=[API_KEY], parse_timeout=0.5)) as client:
        files = {"file": ("slow.pdf", SLOW_PDF, "application/pdf")}
        started = time.monotonic()
        response = client.post("/v1/documents", files=files, headers=AUTH)
        took = time.monotonic() - started
        assert_problem(response, 422, "slow.pdf: parsing took longer than 0.5 s")
        assert took < 5
        small = {"document_id": "small.md", "text": NOTE}
        assert client.post("/v1/documents", json=small, headers=AUTH).status_code == 201
    figure("attacks", slow_pdf_bytes=len(SLOW_PDF), slow_pdf_refused_in_s=round(took, 2))


# ---- 5. low severity ------------------------------------------------------------------------------


def _served(app: FastAPI, settings: Settings, **config: Any) -> Any:
    """The app on a real uvicorn, with the options `qa serve` gives it."""
    return live_server(app, **uvicorn_options(settings), **config)


@pytest.mark.parametrize("trusted", [None, "127.0.0.1"])
def test_x_forwarded_for_picks_no_rate_limit_bucket_unless_a_proxy_is_trusted(
    index_copy: Path, trusted: str | None, figure: Callable[..., None]
) -> None:
    settings = Settings(index_dir=index_copy, rate_limit="2/minute", forwarded_allow_ips=trusted)
    with _served(_app(settings), settings) as url:
        statuses = [
            httpx.get(f"{url}/v1/search?q=fusion", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(4)
        ]
    if trusted is None:
        assert statuses == [200, 200, 429, 429]  # one bucket: the real peer's address
        figure("attacks", spoofed_forwarded_for_requests=4, spoofed_requests_past_limit=statuses.count(200) - 2)
    else:
        assert statuses == [200, 200, 200, 200]  # the trusted proxy's header names the client


def _app(settings: Settings) -> FastAPI:
    from api.main import create_app

    return create_app(settings, embedder=HashEmbedder())


LONG_ID = "x" * 6000 + ".md"


def test_404s_do_not_repeat_the_id_asked_for(make_app: Callable[..., FastAPI], figure: Callable[..., None]) -> None:
    app = make_app(api_keys=[API_KEY])
    with TestClient(app) as client:
        urls = [
            ("GET", f"/v1/documents/{LONG_ID}"),
            ("DELETE", f"/v1/documents/{LONG_ID}"),
            ("GET", f"/v1/passages/{LONG_ID}"),
            ("GET", f"/view/{LONG_ID}"),
            ("GET", f"/static/{LONG_ID}"),
            ("GET", f"/docs/assets/{LONG_ID}"),
            ("GET", f"/{LONG_ID}"),
        ]
        echoed = []
        for method, url in urls:
            response = client.request(method, url, headers=AUTH)
            assert response.status_code == 404, (method, url[:40], response.status_code)
            if "x" * 100 in response.text:
                echoed.append(url[:30])
    assert echoed == []
    figure("attacks", not_found_routes_checked=len(urls), not_found_echoing_the_id=len(echoed))


def test_the_embed_snippet_never_reflects_the_host_header(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        page = client.get("/", headers={"Host": "evil.example"}).text
        assert "evil.example" not in page
        assert "&lt;script src=&quot;/widget.js&quot; defer&gt;" in page
    with TestClient(make_app(public_url="https://qa.example.org/")) as client:
        page = client.get("/", headers={"Host": "evil.example"}).text
        assert "evil.example" not in page
        assert "src=&quot;https://qa.example.org/widget.js&quot;" in page
        assert "endpoint=&quot;https://qa.example.org&quot;" in page


@pytest.mark.parametrize(
    "bad_id", ["zero\u200bwidth.md", "bidi\u202eexe.md", "bom\ufeff.md", "line\u2028sep.md", "soft\u00adhyphen.md"]
)
def test_invisible_characters_in_an_id_are_refused(make_app: Callable[..., FastAPI], bad_id: str) -> None:
    with TestClient(make_app(api_keys=[API_KEY])) as client:
        response = client.post("/v1/documents", json={"document_id": bad_id, "text": NOTE}, headers=AUTH)
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "document_id"]
        assert "invisible format or separator character" in body["errors"][0]["msg"]


def test_nfc_and_nfd_spellings_are_one_document(make_app: Callable[..., FastAPI], figure: Callable[..., None]) -> None:
    nfc, nfd = "caf\u00e9.md", "cafe\u0301.md"
    with TestClient(make_app(api_keys=[API_KEY])) as client:
        assert client.post("/v1/documents", json={"document_id": nfd, "text": NOTE}, headers=AUTH).json() == {
            "document_id": nfc,
            "passages": 1,
        }
        replaced = NOTE.replace("northern", "southern")
        assert (
            client.post("/v1/documents", json={"document_id": nfc, "text": replaced}, headers=AUTH).status_code == 201
        )
        assert _ids(client) == [nfc, DOC_ID]
        assert client.get(f"/v1/documents/{nfd}").json()["text"] == replaced
        assert client.delete(f"/v1/documents/{nfd}", headers=AUTH).status_code == 204
        assert _ids(client) == [DOC_ID]
    figure("attacks", confusable_ids_accepted_as_distinct=0)


def test_a_key_in_the_query_string_is_refused_and_never_logged(
    index_copy: Path, caplog: pytest.LogCaptureFixture, figure: Callable[..., None]
) -> None:
    settings = Settings(index_dir=index_copy, api_keys=[API_KEY])
    attempts = [
        f"/v1/search?q=fusion&api_key={API_KEY}",
        f"/v1/ask?q=fusion&token={API_KEY}",
        f"/v1/documents?key={API_KEY}",
        f"/v1/search?q={API_KEY}",  # a configured key, under any name
        "/v1/search?q=fusion&access_token=not-a-key-of-ours",  # a credential's name, whatever its value
    ]
    with caplog.at_level(logging.INFO), _served(_app(settings), settings, log_config=None, log_level="info") as url:
        for path in attempts:
            response = httpx.get(url + path)
            assert_problem(response, 400, "accepted in the 'Authorization: Bearer <key>' header only")
            assert API_KEY not in response.text
        assert httpx.get(f"{url}/v1/search?q=fusion", headers=AUTH).status_code == 200
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) == len(attempts) + 1 and all("?redacted" in line for line in access[:-1]), access
    server_lines = [r.getMessage() for r in caplog.records if r.name != "httpx"]  # httpx: this test, the client
    assert not [line for line in server_lines if API_KEY in line or "not-a-key-of-ours" in line]
    figure("attacks", keys_in_query_strings=len(attempts), keys_in_query_logged=0)
