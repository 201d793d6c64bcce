"""``/v1/verify``: where stored citations' quotes are now (current, moved or gone).

Up to 10,000 citations in one request: the body is parsed straight into its model and the answer written
as plain JSON, since validating 10,000 objects twice through FastAPI's body and response models took
most of a request's time (about 0.9 s of it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import EngineDep, require_json, require_reader, run_sync
from api.routes import problems
from api.schemas import VerifyOut, VerifyRequest
from qa.engine import Engine
from qa.errors import DocumentNotFound
from qa.types import Document
from qa.verify import Cited, verify

router = APIRouter(tags=["answers"], dependencies=[Depends(require_reader)])

VERIFY_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": VerifyRequest.model_json_schema()}}}
}


def _find(engine: Engine) -> Callable[[str], Document | None]:
    def find(document_id: str) -> Document | None:
        try:
            return engine.document(document_id)
        except DocumentNotFound:
            return None

    return find


def _parse(body: bytes) -> VerifyRequest:
    try:
        return VerifyRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e.get("type") == "json_invalid" for e in errors):
            raise RequestValidationError([{**e, "loc": ("body",)} for e in errors]) from None
        raise RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]) from None


def _answer(engine: Engine, body: bytes) -> bytes:
    cited = [Cited(c.document_id, c.quote, c.start, c.end) for c in _parse(body).citations]
    results = [
        {"status": v.status, "start": v.start, "end": v.end, "document_version": v.document_version}
        for v in verify(cited, _find(engine))
    ]
    return json.dumps({"results": results}, separators=(",", ":")).encode()


@router.post(
    "/verify",
    response_model=VerifyOut,
    responses=problems(400, 401, 403, 404, 413, 415, 422, 429, 503),
    openapi_extra=VERIFY_BODY,
    dependencies=[Depends(require_json)],
)
async def verify_citations(request: Request, engine: EngineDep) -> Response:
    """Check citations returned earlier against the documents as they are now, in order."""
    body = await request.body()
    return Response(await run_sync(_answer, engine, body), media_type="application/json")
