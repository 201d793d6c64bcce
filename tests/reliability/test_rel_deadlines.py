"""Deadlines on a real socket: a slow request gets 503 in bounded time, a slow client's body is cut off,
and clients that never finish their headers do not starve anyone else."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from fastapi import FastAPI
from reliability_helpers import API_KEY, assert_problem, live_server

from api.main import create_app
from qa.config import Settings
from qa.embed import HashEmbedder, Vectors

TIMEOUT = 1.0  # QA_REQUEST_TIMEOUT in these tests
BOUND = TIMEOUT + 2.5  # the longest a client may wait for the 503, on a busy 2-core machine


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """Everything the server sends in ``within`` seconds, and whether it closed the connection."""
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def test_a_slow_request_gets_503_in_bounded_time(make_app: Callable[..., FastAPI], figure: Callable[..., None]) -> None:
    app = make_app(request_timeout=TIMEOUT, debug_delay_ms=10_000)
    with live_server(app) as url:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(httpx.get, f"{url}/v1/ask", params={"q": f"fusion {i}"}, timeout=30) for i in range(8)
            ]
            responses = [f.result() for f in futures]
        waited = time.monotonic() - started
        for response in responses:
            assert_problem(response, 503, f"longer than {TIMEOUT:g} s (QA_REQUEST_TIMEOUT)")
            assert response.headers["retry-after"] == "1"
        assert waited < BOUND
        # The workers were freed: the server answers at once afterwards.
        assert httpx.get(f"{url}/v1/search", params={"q": "fusion"}, timeout=5).status_code == 200
    figure("deadlines", slow_requests=len(responses), slow_request_503_within_s=round(waited, 2))


def _slow_body(url: str, head: bytes, pieces: list[bytes], every: float) -> tuple[bytes, float, bool]:
    """Send ``head`` then ``pieces`` one per ``every`` seconds until the server answers; returns
    (reply, seconds until it answered, whether it then closed the connection)."""
    with _connect(url) as sock:
        sock.sendall(head)
        started = time.monotonic()
        reply = b""
        for piece in pieces:
            sock.settimeout(every)
            try:
                reply = sock.recv(65536)
            except TimeoutError:
                pass
            if reply:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        answered = time.monotonic() - started
        rest, closed = _read_until_closed(sock, 3.0)
        # Keep trickling after the answer: a server that keeps reading would hold the connection.
        return reply + rest, answered, closed


def test_a_slow_client_body_is_cut_off(make_app: Callable[..., FastAPI], figure: Callable[..., None]) -> None:
    """A client sending a few bytes a second gets 503 at the request deadline, and the connection is
    closed: the rest of its body is never waited for."""
    app = make_app(request_timeout=TIMEOUT, api_keys=[API_KEY])
    body = b'{"question": "How many fusion centers are there?"}' + b" " * 2000
    head = b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with live_server(app) as url:
        results = {
            "json": _slow_body(url, head + b"Content-Length: %d\r\n\r\n" % len(body), [b" "] * 200, 0.1),
            "chunked": _slow_body(url, head + b"Transfer-Encoding: chunked\r\n\r\n", [b"1\r\n \r\n"] * 200, 0.1),
            "upload": _slow_body(
                url,
                b"POST /v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode() + b"\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="slow.md"\r\n\r\n',
                [b"a"] * 200,
                0.1,
            ),
        }
        for kind, (reply, answered, closed) in results.items():
            assert reply.startswith(b"HTTP/1.1 503 "), (kind, reply[:200])
            assert b"QA_REQUEST_TIMEOUT" in reply, kind
            assert answered < BOUND, kind
            assert closed, f"{kind}: the server kept the connection open after cutting the body off"
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    slowest = max(answered for _, answered, _ in results.values())
    figure("deadlines", slow_bodies_cut=len(results), slow_body_cut_within_s=round(slowest, 2))


def test_clients_that_never_finish_their_headers_starve_no_one(
    make_app: Callable[..., FastAPI], figure: Callable[..., None]
) -> None:
    """uvicorn has no deadline for headers (a reverse proxy's job, see docs/reliability.md); what it must
    not do is let such connections block other clients."""
    app = make_app(request_timeout=TIMEOUT)
    with live_server(app) as url:
        stalled = [_connect(url) for _ in range(200)]
        try:
            for sock in stalled:
                sock.sendall(b"GET /v1/search?q=fusion HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            started = time.monotonic()
            for _ in range(10):
                assert httpx.get(f"{url}/v1/search", params={"q": "fusion"}, timeout=5).status_code == 200
            served_in = time.monotonic() - started
            for sock in stalled[:20]:
                sock.sendall(b"a")
            _, closed = _read_until_closed(stalled[0], TIMEOUT + 1.0)
        finally:
            for sock in stalled:
                sock.close()
    assert served_in < 5.0
    figure("deadlines", stalled_header_connections=len(stalled), others_served_in_s=round(served_in, 2),
           stalled_headers_closed_by_server=closed)  # fmt: skip


class SlowEmbedder(HashEmbedder):
    """The HashEmbedder's vectors, taking PASSAGE_SECONDS per passage: indexing as slow as a real model on a
    busy machine, however fast this one is today (questions are embedded at once)."""

    PASSAGE_SECONDS = 0.02

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        time.sleep(self.PASSAGE_SECONDS * len(texts))
        return super().embed_passages(texts)


def test_a_write_cut_off_by_the_deadline_still_completes(index_copy: Path) -> None:
    """Pins documented behaviour: the 503 frees the request, but the indexing thread cannot be stopped, so
    the document is served once it finishes. Writes are idempotent by id, so a retry does no harm.

    The deadline (2 s) falls while the document is indexed (246 passages at 0.02 s each, about 5 s), after
    its parse (a quarter of a second): a deadline that passes during the parse stops it, and nothing is
    written."""
    settings = Settings(index_dir=index_copy, request_timeout=2.0, api_keys=[API_KEY])
    app = create_app(settings, embedder=SlowEmbedder())
    text = "# Big\n\n" + " ".join(f"word{i} llama{i % 97}." for i in range(20_000))  # 246 passages, under 1 MiB
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with live_server(app) as url:
        body = {"document_id": "big.md", "text": text}
        response = httpx.post(f"{url}/v1/documents", json=body, headers=auth, timeout=30)
        assert_problem(response, 503, "QA_REQUEST_TIMEOUT")
        deadline = time.monotonic() + 60
        # Until the write lands: 404, or a 503 where a read outlasts the deadline on a busy machine.
        while (status := httpx.get(f"{url}/v1/documents/big.md", timeout=5).status_code) != 200:
            assert status in (404, 503), status
            assert time.monotonic() < deadline, "the write never completed"
            time.sleep(0.2)
        assert httpx.get(f"{url}/v1/documents/big.md", timeout=5).json()["text"] == text
