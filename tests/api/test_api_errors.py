"""Every error path of the API, each checked for its status and the problem+json shape."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import API_KEY, assert_problem, live_server
from fastapi.testclient import TestClient
from index_helpers import only_segment

from api.main import create_app
from api.ratelimit import TokenBuckets
from qa.config import Settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON = {"content-type": "application/json"}

# pytest.param(method, url, request kwargs, status, fragment of detail or of an error message, id=...)
BAD_REQUESTS = [
    pytest.param(
        "POST", "/v1/ask", {"content": b'{"question": ', "headers": JSON}, 400, "not valid JSON", id="malformed-json"
    ),
    pytest.param(
        "POST", "/v1/ask", {"content": b"[" * 50_000 + b"]" * 50_000, "headers": JSON}, 400, "parsing", id="deep-json"
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"content": b"[" * 50_000, "headers": {**JSON, **AUTH}},
        400,
        "JSON",
        id="deep-json-upload",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"content": b"{", "headers": {**JSON, **AUTH}},
        400,
        "not valid JSON",
        id="malformed-upload",
    ),
    pytest.param(
        "POST",
        "/v1/ask",
        {"content": b"{}", "headers": {**JSON, "content-length": "x"}},
        400,
        "Content-Length",
        id="bad-content-length",
    ),
    pytest.param(
        "POST", "/v1/documents", {"files": {"file": ("a.txt", b"  \n")}, "headers": AUTH}, 400, "empty", id="empty-file"
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"files": {"file": ("a.txt", b"\x00\x01")}, "headers": AUTH},
        400,
        "binary",
        id="binary-file",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"files": {"file": ("a.pdf", b"hello")}, "headers": AUTH},
        400,
        "not a PDF",
        id="not-a-pdf",
    ),
    pytest.param(
        "POST", "/v1/documents", {"json": {"document_id": "a.md", "text": "x"}}, 401, "API key is required", id="no-key"
    ),
    pytest.param("DELETE", "/v1/documents/a.md", {}, 401, "API key is required", id="no-key-delete"),
    pytest.param(
        "DELETE", "/v1/documents/a.md", {"headers": {"Authorization": "Basic dTpw"}}, 401, "API key", id="basic-auth"
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {}, "headers": {"Authorization": "Bearer nope"}},
        403,
        "not valid",
        id="wrong-key",
    ),
    pytest.param("GET", "/v1/documents/missing.txt", {}, 404, "no document with this id", id="unknown-document"),
    pytest.param("GET", "/v1/documents/a/b/c.md", {}, 404, "no document with this id", id="unknown-nested"),
    pytest.param("DELETE", "/v1/documents/missing.txt", {"headers": AUTH}, 404, "no document", id="delete-unknown"),
    pytest.param("GET", "/v1/passages/0000", {}, 404, "no passage with this id in the index", id="unknown-passage"),
    pytest.param("GET", "/v2/ask", {}, 404, "Not Found", id="unknown-route"),
    # No redirect to the path without its slash: its Location would be built from the client's Host header.
    pytest.param("GET", "/v1/ask/?q=x", {"headers": {"host": "evil.example"}}, 404, "Not Found", id="trailing-slash"),
    pytest.param("PUT", "/v1/ask", {}, 405, "Method Not Allowed", id="put-ask"),
    pytest.param("PATCH", "/v1/documents", {}, 405, "Method Not Allowed", id="patch-documents"),
    pytest.param(
        "POST", "/v1/ask", {"content": b" " * 200_001, "headers": JSON}, 413, "QA_MAX_BODY_BYTES", id="big-json"
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"files": {"file": ("a.txt", b"a" * 9000)}, "headers": AUTH},
        413,
        "QA_MAX_UPLOAD",
        id="big-upload",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"content": b"hi", "headers": {**AUTH, "content-type": "text/plain"}},
        415,
        "multipart",
        id="text-plain",
    ),
    pytest.param("POST", "/v1/ask", {"json": {"question": "   "}}, 422, "question is empty", id="empty-question"),
    pytest.param("POST", "/v1/ask", {"json": {"question": ""}}, 422, "at least 1 character", id="blank-question"),
    pytest.param("POST", "/v1/ask", {"json": {"question": "a" * 1001}}, 422, "limit is 1000", id="long-question"),
    pytest.param(
        "POST", "/v1/ask", {"json": {"question": "a\u0000b"}}, 422, "control character (U+0000)", id="nul-question"
    ),
    pytest.param("GET", "/v1/ask?q=a%07b", {}, 422, "control character (U+0007)", id="bell-question"),
    pytest.param("POST", "/v1/ask", {"json": {}}, 422, "Field required", id="no-question"),
    pytest.param("POST", "/v1/ask", {"json": {"question": 5}}, 422, "valid string", id="question-int"),
    pytest.param("POST", "/v1/ask", {"json": {"question": "q", "top_k": "3"}}, 422, "valid integer", id="top-k-string"),
    pytest.param("POST", "/v1/ask", {"json": {"question": "q", "top_k": 3.0}}, 422, "valid integer", id="top-k-float"),
    pytest.param(
        "POST", "/v1/ask", {"json": {"question": "q", "top_k": 0}}, 422, "greater than or equal to 1", id="top-k-zero"
    ),
    pytest.param(
        "POST", "/v1/ask", {"json": {"question": "q", "top_k": 21}}, 422, "less than or equal to 20", id="top-k-21"
    ),
    pytest.param("POST", "/v1/ask", {"json": {"question": "q", "k": 3}}, 422, "Extra inputs", id="unknown-field"),
    pytest.param("POST", "/v1/ask", {"json": ["q"]}, 422, "valid dictionary", id="array-body"),
    pytest.param("GET", "/v1/ask", {}, 422, "Field required", id="get-no-q"),
    pytest.param("GET", "/v1/ask?q=x&k=21", {}, 422, "less than or equal to 20", id="get-k-21"),
    pytest.param("GET", "/v1/ask?q=x&k=two", {}, 422, "valid integer", id="get-k-text"),
    pytest.param("GET", "/v1/search?q=x&k=51", {}, 422, "less than or equal to 50", id="search-k-51"),
    pytest.param("GET", "/v1/search?q=%20", {}, 422, "question is empty", id="search-blank"),
    pytest.param("GET", "/v1/documents?limit=0", {}, 422, "greater than or equal to 1", id="list-limit"),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "/etc/x.md", "text": "t"}, "headers": AUTH},
        422,
        "relative",
        id="doc-absolute",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a/../x.md", "text": "t"}, "headers": AUTH},
        422,
        "'..'",
        id="doc-dotdot",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a\\x.md", "text": "t"}, "headers": AUTH},
        422,
        "'\\'",
        id="doc-backslash",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a\nx.md", "text": "t"}, "headers": AUTH},
        422,
        "control",
        id="doc-control",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a" * 253 + ".md", "text": "t"}, "headers": AUTH},
        422,
        "255",
        id="doc-long",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": " a.md", "text": "t"}, "headers": AUTH},
        422,
        "whitespace",
        id="doc-space",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a.exe", "text": "t"}, "headers": AUTH},
        422,
        ".txt",
        id="doc-suffix",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a.md", "text": "t", "x": 1}, "headers": AUTH},
        422,
        "Extra",
        id="doc-extra",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"json": {"document_id": "a.md"}, "headers": AUTH},
        422,
        "Field required",
        id="doc-no-text",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"data": {"document_id": "a.md"}, "files": {"other": ("x", b"")}, "headers": AUTH},
        422,
        "file is required",
        id="upload-no-file",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"files": {"file": ("../a.txt", b"hi")}, "headers": AUTH},
        422,
        "'..'",
        id="upload-bad-name",
    ),
    pytest.param(
        "POST",
        "/v1/documents",
        {"files": {"file": ("a.txt", b"hi")}, "data": {"document_id": "a.bin"}, "headers": AUTH},
        422,
        ".txt",
        id="upload-bad-id",
    ),
    # A JSON route given another media type: the header is at fault, not the body's shape.
    pytest.param(
        "POST",
        "/v1/ask",
        {"content": b'{"question": "fusion"}', "headers": {"content-type": "text/plain"}},
        415,
        "application/json",
        id="ask-text-plain",
    ),
    pytest.param(
        "POST",
        "/v1/verify",
        {"content": b'{"citations": []}', "headers": {"content-type": "text/plain"}},
        415,
        "application/json",
        id="verify-text-plain",
    ),
    pytest.param(
        "POST",
        "/v1/collections",
        {"content": b'{"name": "left"}', "headers": AUTH},
        415,
        "application/json",
        id="collection-no-type",
    ),
    # Bytes that are not UTF-8 once percent-decoded: read as U+FFFD they would be answered as another question.
    pytest.param("GET", "/v1/ask?q=%ff%fe%fd", {}, 400, "query string is not UTF-8", id="query-not-utf8"),
    pytest.param("GET", "/v1/search?q=%c3%28", {}, 400, "query string is not UTF-8", id="query-bad-sequence"),
    pytest.param("GET", "/v1/ask?q=%ed%a0%80", {}, 400, "query string is not UTF-8", id="query-surrogate"),
    pytest.param("GET", "/view/a%ff.md", {}, 400, "path is not UTF-8", id="path-not-utf8"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "fragment"), BAD_REQUESTS)
def test_error_paths(make_client, method: str, url: str, kwargs: dict[str, Any], status: int, fragment: str) -> None:
    client = make_client(api_keys=[API_KEY], max_body_bytes=200_000, max_upload_bytes=8192)
    body = assert_problem(client.request(method, url, **kwargs), status)
    messages = [body["detail"]] + [e["msg"] for e in body.get("errors", [])]
    assert any(fragment in m for m in messages), messages


def test_lone_surrogate_is_422_not_500(client: TestClient) -> None:
    """Regression: json.loads accepts "\\ud800" and yields a lone surrogate, which must not reach a 500."""
    body = assert_problem(client.post("/v1/ask", content=b'{"question": "why \\ud800"}', headers=JSON), 422)
    assert body["errors"] == [
        {
            "loc": ["body", "question"],
            "msg": "question is not valid Unicode (it contains a lone surrogate)",
        }
    ]
    upload = {"document_id": "a.md", "text": "\\ud800"}
    raw = json.dumps(upload).replace("\\\\ud800", "\\ud800").encode()
    body = assert_problem(client.post("/v1/documents", content=raw, headers={**JSON, **AUTH}), 422)
    assert body["errors"] == [
        {"loc": ["body", "text"], "msg": "text is not valid Unicode (it contains a lone surrogate)"}
    ]


def test_validation_errors_name_field_and_rule(client: TestClient) -> None:
    body = assert_problem(client.post("/v1/ask", json={"question": "", "top_k": 99, "mode": "x"}), 422)
    assert body["title"] == "Unprocessable Entity"
    assert body["detail"] == "3 fields are not valid"
    assert body["errors"] == [
        {"loc": ["body", "question"], "msg": "String should have at least 1 character"},
        {"loc": ["body", "top_k"], "msg": "Input should be less than or equal to 20"},
        {"loc": ["body", "mode"], "msg": "Extra inputs are not permitted"},
    ]


def test_405_names_allowed_methods(client: TestClient) -> None:
    response = client.put("/v1/ask")
    assert_problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


@pytest.mark.parametrize("path", ["/healthz", "/v1/ask?q=How+many+fusion+centers+are+there%3F", "/", "/widget.js"])
def test_head_is_answered_as_get_without_the_body(client: TestClient, path: str) -> None:
    """A health check by HEAD got 405 (FastAPI's routes declare GET only): it gets GET's status and headers."""
    got, head = client.get(path), client.head(path)
    assert got.status_code == head.status_code == 200 and got.content and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if not path.startswith("/v1/ask"):  # an answer carries its own timing, so its length varies
        assert head.headers["content-length"] == got.headers["content-length"]


@pytest.mark.parametrize("kind", ["application/json", "application/json; charset=utf-8", "application/problem+json"])
def test_a_json_route_reads_json_media_types(client: TestClient, kind: str) -> None:
    """``require_json`` lets through what FastAPI reads as JSON: the type with parameters, and ``+json`` types."""
    body = b'{"question": "How many fusion centers are there?"}'
    assert client.post("/v1/ask", content=body, headers={"content-type": kind}).status_code == 200


def test_head_of_a_post_only_route_is_405(client: TestClient) -> None:
    response = client.head("/v1/verify")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_streamed_body_over_limit_is_413(make_client) -> None:
    """Without Content-Length the body is counted as it arrives."""
    client = make_client(max_body_bytes=1024)
    response = client.post("/v1/ask", content=(b" " * 512 for _ in range(100)), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "limited to 1024 bytes (QA_MAX_BODY_BYTES)")


def test_streamed_body_is_refused_before_it_ends(index_copy: Path, hash_embedder) -> None:
    """On a real server the 413 arrives while the client is still sending: the body is never read whole."""
    app = create_app(Settings(index_dir=index_copy, max_body_bytes=1024), embedder=hash_embedder)
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = "POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"200\r\n" + b" " * 512 + b"\r\n"
            sent = 0
            while sent < 1000 and not select.select([sock], [], [], 0.02)[0]:
                sock.sendall(chunk)
                sent += 1
            reply = sock.recv(65536).decode("latin-1")
    assert sent < 20
    assert reply.startswith("HTTP/1.1 413 "), reply
    assert "application/problem+json" in reply


def test_not_ready_without_index(make_client, tmp_path: Path) -> None:
    """/readyz says what is missing and what to run, never where the index lives (anyone may call it)."""
    client = make_client(index_dir=tmp_path / "empty")
    response = client.get("/readyz")
    assert_problem(response, 503, "no index has been built yet: build one with `qa index`")
    assert str(tmp_path) not in response.text
    assert_problem(client.post("/v1/ask", json={"question": "q"}), 503, "no index")
    assert_problem(client.get("/v1/documents"), 503, "no index")
    assert client.get("/healthz").json() == {"status": "ok"}


def test_not_ready_with_damaged_index(make_client, index_copy: Path) -> None:
    build = only_segment(index_copy)
    (build / "passages.jsonl").write_text("damaged\n", encoding="utf-8")
    """A damaged index is named as such; which file, and where, goes to the server log only."""
    client = make_client()
    response = client.get("/readyz")
    assert_problem(response, 503, "the index is damaged or was built with another version or model")
    assert "passages.jsonl" not in response.text and str(index_copy) not in response.text
    assert_problem(client.get("/v1/search?q=x"), 503, "is damaged")


def test_request_timeout_is_503(make_client) -> None:
    client = make_client(request_timeout=0.2, debug_delay_ms=3000)
    started = time.monotonic()
    response = client.get("/v1/ask?q=fusion")
    assert time.monotonic() - started < 2
    assert_problem(response, 503, "longer than 0.2 s (QA_REQUEST_TIMEOUT)")
    assert client.get("/healthz").status_code == 200


def test_rate_limit_is_429_with_retry_after(make_client) -> None:
    client = make_client(api_keys=[API_KEY], rate_limit="2/minute")
    assert [client.get("/v1/search?q=x").status_code for _ in range(2)] == [200, 200]
    response = client.get("/v1/search?q=x")
    assert_problem(response, 429, "rate limit exceeded")
    assert response.headers["retry-after"] == "30"
    assert client.get("/healthz").status_code == 200  # probes are never limited
    keyed = {"Authorization": f"Bearer {API_KEY}"}  # a valid key has its own bucket
    assert client.get("/v1/search?q=x", headers=keyed).status_code == 200
    wrong = {"Authorization": "Bearer made-up"}  # a made-up key buys nothing
    assert_problem(client.get("/v1/search?q=x", headers=wrong), 429)


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(3, 60.0, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)
    assert buckets.take("b") == 0.0
    now[0] = 20.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(20.0)


def test_unhandled_error_is_500_without_internals(make_client) -> None:
    client = make_client(raise_server_exceptions=False)

    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    client.app.add_api_route("/boom", boom)
    response = client.get("/boom")
    body = assert_problem(response, 500, "internal server error")
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                    "detail": "internal server error; the details are in the server log"}  # fmt: skip
    assert response.headers["x-content-type-options"] == "nosniff"
