"""``/v1/search`` and ``/v1/passages/{passage_id}``: retrieved passages, without extraction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from api.deps import EngineDep, require_reader, run_sync
from api.routes import problems
from api.schemas import FilterParam, PassageOut, SearchOut, check_question
from qa.cite import section_of
from qa.metadata import metadata_record
from qa.records import search_record

router = APIRouter(tags=["passages"], dependencies=[Depends(require_reader)])


@router.get("/search", responses=problems(400, 401, 403, 404, 422, 429, 503))
async def search(
    q: Annotated[str, Query(min_length=1, description="The query"), AfterValidator(check_question)],
    engine: EngineDep,
    k: Annotated[int, Query(ge=1, le=50, description="Passages to return")] = 10,
    where: FilterParam = None,
) -> SearchOut:
    """Passages that best match a query, with the offsets of its words in each passage."""
    parsed = await run_sync(engine.parse_filter, where) if where is not None else None
    results = await run_sync(engine.search, q, k=k, where=parsed)
    return SearchOut.model_validate({"query": q, "results": [search_record(r) for r in results]})


@router.get("/passages/{passage_id}", responses=problems(401, 403, 404, 422, 429, 503))
async def get_passage(passage_id: str, engine: EngineDep) -> PassageOut:
    """One passage by id, with its place in its document."""
    passage = engine.passage(passage_id)
    document = engine.document(passage.doc_id)
    return PassageOut(
        passage_id=passage.id,
        document_id=passage.doc_id,
        document_title=document.title,
        section=section_of(passage.section_path, document.title),
        section_path=list(passage.section_path),
        kind=passage.kind,
        text=passage.text,
        start=passage.start,
        end=passage.end,
        document_metadata=metadata_record(document.metadata),
    )
