"""Access: keys compared in constant time and never logged; read keys; rate limits and CORS under a burst."""

from __future__ import annotations

import ast
import concurrent.futures
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from reliability_helpers import API_KEY, assert_problem, live_server

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://partner.example"
EVIL = "https://evil.example"
READS = ["/v1/ask?q=fusion", "/v1/search?q=fusion", "/v1/documents", "/v1/documents/immigration-data-sharing.txt"]
SECRET_WORDS = ("key", "token", "credential", "secret", "password")


# ---- constant time ------------------------------------------------------------------------------


def _names(node: ast.AST) -> list[str]:
    return [
        n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node) if isinstance(n, ast.Name | ast.Attribute)
    ]


def secret_comparisons(source: str) -> list[str]:
    """``==``, ``!=``, ``in`` and ``not in`` comparisons that involve a name like key/token/credential:
    each would compare a secret in time that depends on how much of it matches."""
    findings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            names = [name for part in (node.left, *node.comparators) for name in _names(part)]
            if any(word in name.lower() for name in names for word in SECRET_WORDS):
                findings.append(f"line {node.lineno}: {ast.unparse(node)}")
    return findings


def test_the_scan_finds_a_plain_comparison_of_keys() -> None:
    assert secret_comparisons("if token == key:\n    pass") == ["line 1: token == key"]
    assert secret_comparisons("ok = presented in settings.api_keys") == ["line 1: presented in settings.api_keys"]
    assert secret_comparisons("hmac.compare_digest(a, key)") == []


@pytest.mark.parametrize("path", sorted((ROOT / "api").rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_key_is_compared_in_variable_time(path: Path) -> None:
    assert secret_comparisons(path.read_text(encoding="utf-8")) == []


def test_keys_are_compared_with_hmac_compare_digest() -> None:
    """The key ring (qa.keys) compares a presented key's digest with every entry's, in constant time."""
    from qa.keys import ALL_SCOPES, KeyRing

    assert secret_comparisons((ROOT / "qa" / "keys.py").read_text(encoding="utf-8")) == []
    tree = ast.parse((ROOT / "qa" / "keys.py").read_text(encoding="utf-8"))
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "scopes_of")
    calls = [ast.unparse(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls
    # Every entry is compared, whichever matches: no early exit inside the loop that times the position.
    loop = next(n for n in ast.walk(function) if isinstance(n, ast.For))
    assert not [n for n in ast.walk(loop) if isinstance(n, ast.Return | ast.Break)]
    ring = KeyRing.of(None, ["other", API_KEY])
    assert ring.scopes_of(API_KEY) == ALL_SCOPES and ring.scopes_of(API_KEY[:-1]) is None
    utf8 = KeyRing.of(None, ["caf\u00e9"])  # UTF-8 bytes on the wire, decoded as latin-1 by the server
    assert utf8.scopes_of("caf\u00c3\u00a9") == ALL_SCOPES and utf8.scopes_of("caf\u00e9") is None


# ---- never logged ----------------------------------------------------------------------------------


def test_keys_never_reach_a_log_line_or_a_response(
    make_app: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture, figure: Callable[..., None]
) -> None:
    """Every logger at DEBUG, uvicorn's access log included, while keys (right, wrong, malformed) are sent."""
    app = make_app(api_keys=[API_KEY], require_key_for_reads=True, cors_origins=[ORIGIN])

    def boom() -> None:
        raise RuntimeError("failure while a key was in the headers")

    app.add_api_route("/boom", boom)
    wrong = ["wrong-key-1b2c3d", API_KEY[:-1], API_KEY + "0", API_KEY.upper()]
    headers = [
        f"Bearer {API_KEY}",
        f"bearer   {API_KEY}",
        f"Basic {API_KEY}",
        API_KEY,
        *(f"Bearer {w}" for w in wrong),
    ]
    bodies = []
    caplog.set_level(logging.DEBUG)
    with live_server(app, log_level="debug", log_config=None, access_log=True) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for header in headers:
                auth = {"Authorization": header, "Origin": ORIGIN}
                for method, path, kwargs in [
                    ("GET", "/v1/search?q=fusion", {}),
                    ("POST", "/v1/ask", {"json": {"question": "fusion?", "extra": API_KEY}}),
                    ("POST", "/v1/documents", {"json": {"document_id": "k.md", "text": "# K\n\nKey text."}}),
                    (
                        "POST",
                        "/v1/documents",
                        {"content": b"{not json", "headers": {"content-type": "application/json"}},
                    ),
                    ("DELETE", "/v1/documents/k.md", {}),
                    ("GET", "/boom", {}),
                ]:
                    extra = kwargs.pop("headers", {})
                    response = client.request(method, path, headers={**auth, **extra}, **kwargs)
                    bodies.append(response.text)
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not the client's
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in server_side)
    assert "GET /v1/search?q=fusion HTTP/1.1" in logged  # the access log was captured
    assert "failure while a key was in the headers" in logged  # so was the traceback
    for secret in [API_KEY, *wrong]:
        assert secret not in logged
        assert not [body for body in bodies if secret in body]
    figure("access", key_headers_tried=len(headers), requests_checked_for_leaks=len(bodies))


# ---- under a burst ---------------------------------------------------------------------------------


def _burst(url: str, requests: list[tuple[str, str, dict[str, str]]], workers: int = 16) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=workers)) as client:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(client.request, method, path, headers=headers) for method, path, headers in requests]
            return [f.result() for f in futures]


def test_read_keys_hold_under_a_burst(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(api_keys=[API_KEY], require_key_for_reads=True)
    keys = {"none": {}, "wrong": {"Authorization": "Bearer nope"}, "right": {"Authorization": f"Bearer {API_KEY}"}}
    requests = [("GET", path, headers) for _ in range(8) for path in READS for headers in keys.values()]
    requests += [("GET", path, {}) for path in ("/healthz", "/readyz", "/metrics") for _ in range(8)]
    with live_server(app) as url:
        responses = _burst(url, requests)
    seen = Counter((r.request.headers.get("authorization", "none"), r.status_code) for r in responses)
    assert seen == {
        ("none", 401): 8 * len(READS),
        ("Bearer nope", 403): 8 * len(READS),
        (f"Bearer {API_KEY}", 200): 8 * len(READS),
        ("none", 200): 24,
    }
    for response in responses:
        if response.status_code >= 400:
            assert_problem(response, response.status_code)


RATE = "20/second"  # a bucket of 20, refilled at 20 a second


def test_rate_limit_and_cors_hold_under_a_burst(make_app: Callable[..., FastAPI], figure: Callable[..., None]) -> None:
    app = make_app(api_keys=[API_KEY], rate_limit=RATE, cors_origins=[ORIGIN])
    origins: list[dict[str, str]] = [{"Origin": ORIGIN}, {"Origin": EVIL}, {}]
    requests = [("GET", "/v1/search?q=fusion", origins[i % 3]) for i in range(300)]
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    requests += [("OPTIONS", "/v1/ask", preflight)] * 30 + [("GET", "/healthz", {})] * 30
    keyed = [("GET", "/v1/search?q=fusion", {"Authorization": f"Bearer {API_KEY}", "Origin": ORIGIN})] * 20
    with live_server(app) as url:
        started = time.monotonic()
        responses = _burst(url, requests)
        elapsed = time.monotonic() - started
        keyed_responses = _burst(url, keyed)  # a valid key has its own bucket, full
    searches = [r for r in responses if r.request.url.path == "/v1/search"]
    statuses = Counter(r.status_code for r in searches)
    assert set(statuses) <= {200, 429} and statuses[429] > 0
    assert statuses[200] <= 20 + 20 * elapsed + 20  # the bucket, its refill while the burst ran, a second of slack
    for response in searches:
        origin = response.request.headers.get("origin")
        assert response.headers.get("access-control-allow-origin") == (ORIGIN if origin == ORIGIN else None)
        assert response.headers["x-content-type-options"] == "nosniff"
        if response.status_code == 429:
            assert_problem(response, 429, "rate limit exceeded (QA_RATE_LIMIT)")
            assert int(response.headers["retry-after"]) >= 1
            if origin == ORIGIN:  # the widget can read how long to wait
                assert "retry-after" in response.headers["access-control-expose-headers"].lower()
    others = [r for r in responses if r.request.url.path != "/v1/search"]
    assert {r.status_code for r in others} == {200}  # preflights and probes are never limited
    assert Counter(r.status_code for r in keyed_responses) == {200: 20}
    figure(
        "access",
        burst_requests=len(requests) + len(keyed),
        burst_seconds=round(elapsed, 2),
        burst_statuses={str(k): v for k, v in sorted(statuses.items())},
        rate_limit=RATE,
        max_allowed=math.floor(40 + 20 * elapsed),
    )


def test_every_settings_combination_serves_a_key_holder(make_app: Callable[..., FastAPI]) -> None:
    """Keys, read keys, a rate limit and CORS together: a key holder reads and writes, others are told why not."""
    app = make_app(
        api_keys=[API_KEY, "second"], require_key_for_reads=True, rate_limit="1000/minute", cors_origins=[ORIGIN]
    )
    auth = {"Authorization": "Bearer second", "Origin": ORIGIN}
    body: dict[str, Any] = {"document_id": "combo.md", "text": "# Combo\n\nAll settings at once."}
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/v1/documents", json=body, headers=auth).status_code == 201
        response = client.get("/v1/documents/combo.md", headers=auth)
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == ORIGIN
        assert client.delete("/v1/documents/combo.md", headers=auth).status_code == 204
        assert_problem(client.get("/v1/documents/combo.md"), 401)
