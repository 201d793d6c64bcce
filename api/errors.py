"""One error shape for every 4xx and 5xx: RFC 9457 problem details.

Every handler here returns ``application/problem+json``::

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "1 field is not valid", "errors": [{"loc": ["body", "top_k"], "msg": "..."}]}

``type`` is always ``about:blank``, so ``title`` is the HTTP status phrase
(RFC 9457, section 4.2.1) and ``detail`` says what went wrong this time.
Sources, all mapped here:

* ``QAError`` subclasses from the core library carry their own ``status``.
* ``HTTPException`` (ours, FastAPI's and Starlette's routing 404/405).
* ``RequestValidationError``: 422, or 400 when the body is not JSON at all.
* Anything else: 500 with a fixed detail; the traceback goes to the log only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Route

from qa.errors import QAError

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
INTERNAL_DETAIL = "internal server error; the details are in the server log"


class ProblemResponse(JSONResponse):
    """A problem-details body, rendered as ASCII-only JSON.

    ``ensure_ascii`` escapes any character, a lone surrogate included, so a
    message quoting odd input can never make the error response itself fail.
    """

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def status_title(status: int) -> str:
    """The HTTP reason phrase of a status code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    """Build a problem-details response.

    Args:
        status: HTTP status code.
        detail: A sentence for the client about this occurrence; never internals.
        errors: Field errors, each ``{"loc": [...], "msg": "..."}``.
        headers: Extra headers (``Retry-After``, ``WWW-Authenticate``, ``Allow``).
    """
    body: dict[str, Any] = {"type": "about:blank", "title": status_title(status), "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def field_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to ``loc`` and ``msg``: the input value is never echoed."""
    out = []
    for error in raw:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        msg = str(error.get("msg", "invalid value"))
        ctx = error.get("ctx") or {}
        if error.get("type") == "json_invalid" and ctx.get("error"):
            msg = f"{msg}: {ctx['error']}"
        if error.get("type") == "value_error":  # our own checks' words, without pydantic's "Value error, "
            msg = msg.removeprefix("Value error, ")
        out.append({"loc": loc, "msg": msg})
    return out


async def qa_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, QAError)
    status = exc.status if 400 <= exc.status < 600 else 500
    if status >= 500 and status != 503:
        logger.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
        return problem(500, INTERNAL_DETAIL)
    return problem(status, str(exc))


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.state.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def http_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else status_title(exc.status_code)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return problem(exc.status_code, detail, headers=headers)


async def validation_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem(400, "the request body is not valid JSON", errors=errors)
    noun = "field is" if len(errors) == 1 else "fields are"
    return problem(422, f"{len(errors)} {noun} not valid", errors=errors)


async def unhandled_error_handler(request: Request, exc: Exception) -> ProblemResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, INTERNAL_DETAIL)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(QAError, qa_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
