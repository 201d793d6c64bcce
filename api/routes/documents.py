"""``/v1/documents``: list and read what is indexed; add (JSON or upload) and delete with a key.

Ids are looked up in the index only, never on the filesystem. Writes run one
at a time, in a thread, and swap the served engine when done (``api.state``).

The work a write may cause is bounded before it starts: the upload is parsed in a
child process that is killed at ``QA_PARSE_TIMEOUT`` (``qa.isolate``), and a document
that would make more than ``QA_MAX_DOCUMENT_PASSAGES`` passages, or more than
``QA_MAX_WRITE_TEXTS`` texts to embed, is refused with 413 before it takes the writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.deps import EngineDep, ServiceDep, SettingsDep, media_type, require_reader, require_writer, run_sync
from api.routes import problems
from api.schemas import (
    METADATA_DESCRIPTION,
    DocumentIn,
    DocumentList,
    DocumentOut,
    DocumentSummary,
    DocumentWritten,
    SectionOut,
    UploadFields,
)
from api.state import Service, add_document, remove_document
from qa.build import built_max_chars, check_write_cost
from qa.cite import document_version
from qa.config import Settings
from qa.engine import Engine
from qa.ingest import normalize_id
from qa.isolate import parse_isolated
from qa.metadata import MetaValue, metadata_record
from qa.sources import StoredSource
from qa.structure import heading_text
from qa.types import Document

router = APIRouter(tags=["documents"])
T = TypeVar("T")

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": ".txt, .md, .html or .pdf"},
                        "document_id": {"type": "string", "description": "Default: the file name"},
                        "title": {"type": "string"},
                        "metadata": {"type": "string", "description": "JSON object: " + METADATA_DESCRIPTION},
                    },
                }
            },
        },
    }
}


def _summary(doc: Document, passages: int) -> dict[str, Any]:
    sections = [
        SectionOut(title=heading_text(doc.text, b), level=b.level, start=b.start, end=b.end)
        for b in doc.blocks
        if b.kind == "heading"
    ]
    return {
        "document_id": doc.id,
        "title": doc.title,
        "format": doc.format,
        "length": len(doc.text),
        "sha256": document_version(doc.text),
        "version": document_version(doc.text),
        "passages": passages,
        "sections": sections,
        "metadata": metadata_record(doc.metadata),
    }


@router.get("/documents", dependencies=[Depends(require_reader)], responses=problems(401, 403, 404, 422, 429, 503))
async def list_documents(
    engine: EngineDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DocumentList:
    """The indexed documents, sorted by id, with their section outlines."""
    index = engine.index
    ids = sorted(index.documents)[offset : offset + limit]
    documents = [DocumentSummary(**_summary(index.documents[i], index.passage_count(i))) for i in ids]
    return DocumentList(documents=documents, total=len(index.documents), offset=offset, limit=limit)


@router.get(
    "/documents/{document_id:path}",
    dependencies=[Depends(require_reader)],
    responses=problems(401, 403, 404, 422, 429, 503),
)
async def get_document(document_id: str, engine: EngineDep) -> DocumentOut:
    """One document with its text exactly as indexed (every offset refers to it)."""
    doc = engine.document(document_id)
    return DocumentOut(**_summary(doc, engine.index.passage_count(doc.id)), text=doc.text)


def _invalid(errors: list[Any]) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors])


Upload = tuple[str, bytes, str | None, dict[str, MetaValue]]


async def _json_upload(request: Request) -> Upload:
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError) as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "ctx": {"error": str(exc)[:200]}}]
        ) from None
    try:
        body = DocumentIn.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc.errors(include_url=False, include_input=False)) from None
    return body.document_id, body.text.encode("utf-8"), body.title, body.metadata or {}


async def _multipart_upload(request: Request, settings: Settings) -> Upload:
    async with request.form(max_files=1, max_fields=3) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise _invalid([{"type": "missing", "loc": ("file",), "msg": "a file is required in the 'file' field"}])
        fields: dict[str, Any] = {k: v for k, v in form.multi_items() if k != "file"}
        fields.setdefault("document_id", file.filename or "")
        try:
            meta = UploadFields.model_validate(fields)
        except ValidationError as exc:
            raise _invalid(exc.errors(include_url=False, include_input=False)) from None
        data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"uploads are limited to {settings.max_upload_bytes} bytes (QA_MAX_UPLOAD_BYTES)")
    return meta.document_id, data, meta.title, meta.metadata or {}


def _check_cost(engine: Engine, doc: Document, settings: Settings) -> None:
    limits = {"max_passages": settings.max_document_passages, "max_texts": settings.max_write_texts}
    check_write_cost(doc, max_chars=built_max_chars(engine.index), **limits)


async def _write(service: Service, func: Callable[..., T], *args: object) -> T:
    """One write at a time; waiting writers hold no thread."""
    assert service.write_lock is not None, "the app has not started"
    async with service.write_lock:
        return await run_sync(func, service, *args)


@router.post(
    "/documents",
    status_code=201,
    dependencies=[Depends(require_writer)],
    responses=problems(400, 401, 403, 404, 413, 415, 422, 429, 503),
    openapi_extra=UPLOAD_BODY,
)
async def post_document(
    request: Request, engine: EngineDep, service: ServiceDep, settings: SettingsDep
) -> DocumentWritten:
    """Add or replace a document (JSON text or a file upload); answerable once this returns.

    ``engine`` answers 503 before the body is read when no index is loaded, and gives the passage length.
    """
    content_type = media_type(request)
    if content_type == "multipart/form-data":
        document_id, data, title, metadata = await _multipart_upload(request, settings)
    elif content_type == "application/json":
        document_id, data, title, metadata = await _json_upload(request)
    else:
        raise HTTPException(415, "send application/json or multipart/form-data")
    doc = await run_sync(
        parse_isolated, document_id, data, title=title, metadata=metadata, seconds=settings.parse_timeout
    )
    await run_sync(_check_cost, engine, doc, settings)
    source = StoredSource(document_id, title, data, metadata=metadata)
    passages = await _write(service, add_document, doc, source)
    return DocumentWritten(document_id=document_id, passages=passages)


@router.delete(
    "/documents/{document_id:path}",
    status_code=204,
    response_class=Response,
    dependencies=[Depends(require_writer)],
    responses=problems(401, 403, 404, 422, 429, 503),
)
async def delete_document(document_id: str, engine: EngineDep, service: ServiceDep) -> Response:
    """Remove a document from the index, and its stored upload."""
    await _write(service, remove_document, normalize_id(document_id))
    return Response(status_code=204)
