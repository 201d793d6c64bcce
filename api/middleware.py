"""ASGI middleware: metrics, security headers, CORS, last-resort 500s, rate limits, body limits, deadlines.

Outermost first (``install`` adds them in reverse)::

    MetricsMiddleware          counts every response, the ones below included
    SecurityHeadersMiddleware  nosniff everywhere; a strict CSP unless the route set one
    ProblemCORSMiddleware      QA_CORS_ORIGINS; failed preflights as problem+json
    KeyInURLMiddleware         a credential in the query string -> 400, redacted before it is logged
    URLTextMiddleware          a path or query string that is not UTF-8 once percent-decoded -> 400
    HeadMiddleware             HEAD answered as GET, without the body
    CatchAllMiddleware         an exception that escaped every handler -> 500 problem+json
    RateLimitMiddleware        QA_RATE_LIMIT -> 429 + Retry-After
    BodyLimitMiddleware        QA_MAX_BODY_BYTES / QA_MAX_UPLOAD_BYTES -> 413, before the body is read
    DeadlineMiddleware         QA_REQUEST_TIMEOUT -> 503

They are plain ASGI classes rather than ``BaseHTTPMiddleware``, which would
buffer bodies and hide the streaming that the body limit counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import anyio
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import INTERNAL_DETAIL, problem
from api.metrics import Metrics, MetricsMiddleware
from api.ratelimit import RateLimitMiddleware, TokenBuckets
from qa.config import Settings, parse_rate_limit

logger = logging.getLogger(__name__)

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"
# Room for multipart boundaries and part headers around a file of QA_MAX_UPLOAD_BYTES;
# the route checks the file's own size exactly.
MULTIPART_OVERHEAD = 64 * 1024


class SecurityHeadersMiddleware:
    """Adds ``nosniff`` and ``no-referrer`` to every response, and a strict CSP to those without one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Referrer-Policy", "no-referrer")
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = DEFAULT_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that a refused preflight is problem+json like every other 4xx."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
        return problem(response.status_code, bytes(response.body).decode("utf-8", "replace"), headers=headers)


# Query parameters that carry credentials by convention, refused whatever their value.
AUTH_PARAMS = frozenset(
    {"key", "api_key", "apikey", "api-key", "access_token", "token", "auth", "authorization", "bearer", "password"}
)
REDACTED = b"redacted"


class KeyInURLMiddleware:
    """Refuses with 400 a request whose query string carries a credential, after redacting it.

    Keys travel in the ``Authorization`` header only: a key in a URL lands in access logs, proxy
    logs and browser history. uvicorn writes its access log line from this request's scope once
    the response is sent, so the query string is replaced in that scope before anything is logged.
    A credential is a parameter named like one (``api_key``, ``token``, ...) or any value that is
    a configured key.
    """

    def __init__(self, app: ASGIApp, *, is_valid_key: Callable[[str], bool]) -> None:
        self.app = app
        self.is_valid_key = is_valid_key

    def carries_key(self, query: bytes) -> bool:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        named = any(name.strip().lower() in AUTH_PARAMS for name, _ in pairs)
        valued = [self.is_valid_key(value) for _, value in pairs]  # every value, whatever matched first
        return named or any(valued)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string") or not self.carries_key(scope["query_string"]):
            await self.app(scope, receive, send)
            return
        scope["query_string"] = REDACTED
        detail = "API keys are accepted in the 'Authorization: Bearer <key>' header only, never in the URL"
        await problem(400, detail)(scope, receive, send)


def is_utf8(raw: bytes) -> bool:
    """Whether percent-decoded ``raw`` (a path or query string, ``+`` read as a space) is UTF-8, surrogates
    excluded: what the server decodes it as otherwise replaces the bad bytes and answers another question."""
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class URLTextMiddleware:
    """Refuses with 400 a request whose path or query string is not UTF-8 once percent-decoded
    (``?q=%ff``): the server would read U+FFFD in place of the bytes, and answer a question nobody asked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for part, raw in (("query string", scope.get("query_string", b"")), ("path", scope.get("raw_path") or b"")):
                if raw and not is_utf8(raw):
                    await problem(400, f"the URL's {part} is not UTF-8 text once percent-decoded")(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class HeadMiddleware:
    """Answers ``HEAD`` as ``GET`` without the body (RFC 9110 asks every server that answers GET to answer
    HEAD; FastAPI's routes declare GET only, so a health check by HEAD got 405). The headers are GET's,
    Content-Length included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class _Tracker:
    """Wraps ``send`` and remembers whether the response has started."""

    def __init__(self, send: Send, on_start: Callable[[], None] | None = None) -> None:
        self._send = send
        self._on_start = on_start
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if self._on_start is not None:
                self._on_start()
        await self._send(message)


class CatchAllMiddleware:
    """Turns an exception no handler took into a 500 problem that leaks nothing.

    Starlette's own last resort sits outside every middleware, so its 500s
    would miss the security headers, CORS and metrics; this one sits inside.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracker = _Tracker(send)
        try:
            await self.app(scope, receive, tracker)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if tracker.started:
                raise
            await problem(500, INTERNAL_DETAIL)(scope, receive, send)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes its limit.

    An ``HTTPException``, so FastAPI's body reader passes it on unchanged and
    the handler answers 413.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail, headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Refuses bodies over the limit: by ``Content-Length`` at once, else while they stream in."""

    def __init__(self, app: ASGIApp, *, max_json: int, max_upload: int, max_verify: int) -> None:
        self.app = app
        self.max_json = max_json
        self.max_upload = max_upload
        self.max_verify = max_verify

    def _limit(self, headers: Headers, path: str) -> tuple[int, str]:
        if path.endswith("/verify"):  # up to 10,000 citations with their quotes
            return self.max_verify, f"verify requests are limited to {self.max_verify} bytes (QA_MAX_VERIFY_BYTES)"
        if headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return (
                self.max_upload + MULTIPART_OVERHEAD,
                f"uploads are limited to {self.max_upload} bytes (QA_MAX_UPLOAD_BYTES)",
            )
        return self.max_json, f"request bodies are limited to {self.max_json} bytes (QA_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit, detail = self._limit(headers, scope.get("path", ""))
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(declared) > limit:
                await problem(413, detail, headers={"Connection": "close"})(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail)
            return message

        tracker = _Tracker(send)
        try:
            await self.app(scope, counting_receive, tracker)
        except BodyTooLarge as exc:
            if tracker.started:
                raise
            await problem(413, str(exc.detail), headers=dict(exc.headers or {}))(scope, receive, send)


class DeadlineMiddleware:
    """Answers 503 when a request has not started its response within ``seconds``.

    Reading the body counts against the deadline, so a client that sends a few
    bytes a second is cut off too; its 503 then closes the connection, or the
    server would go on reading the rest of that body for as long as it trickles.
    Once the response has started the deadline is lifted, so a response is
    never cut off halfway. Blocking work must run in threads that can be
    abandoned (``api.deps.run_sync``) for the cancellation to take effect.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        body_read = headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers

        async def tracking_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        with anyio.move_on_after(self.seconds) as cancel_scope:

            def lift_deadline() -> None:
                cancel_scope.deadline = math.inf

            tracker = _Tracker(send, lift_deadline)
            await self.app(scope, tracking_receive, tracker)
        if cancel_scope.cancelled_caught and not tracker.started:
            detail = f"the request took longer than {self.seconds:g} s (QA_REQUEST_TIMEOUT); try again"
            extra = {} if body_read else {"Connection": "close"}
            await problem(503, detail, headers={"Retry-After": "1", **extra})(scope, receive, send)


def install(app: FastAPI, settings: Settings, metrics: Metrics, is_valid_key: Callable[[str], bool]) -> None:
    """Add the middleware stack to ``app`` (the last added runs first)."""
    app.add_middleware(DeadlineMiddleware, seconds=settings.request_timeout)
    app.add_middleware(
        BodyLimitMiddleware,
        max_json=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        max_verify=settings.max_verify_bytes,
    )
    if settings.rate_limit:
        capacity, period = parse_rate_limit(settings.rate_limit)
        app.add_middleware(RateLimitMiddleware, buckets=TokenBuckets(capacity, period), is_valid_key=is_valid_key)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(URLTextMiddleware)
    app.add_middleware(KeyInURLMiddleware, is_valid_key=is_valid_key)
    cors: dict[str, Any] = {
        "allow_origins": list(settings.cors_origins),
        "allow_credentials": False,  # keys travel in a header, never in cookies
        "allow_methods": ["GET", "POST", "DELETE"],
        "allow_headers": ["Authorization", "Content-Type"],
        "expose_headers": ["Retry-After"],  # not CORS-safelisted: without this the widget cannot read a 429's wait
        "max_age": 600,
    }
    app.add_middleware(ProblemCORSMiddleware, **cors)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
