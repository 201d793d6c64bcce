"""``/v1/ask``: a verbatim answer with citations, or an abstention."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from api.deps import EngineDep, SettingsDep, require_json, require_reader, run_sync
from api.routes import problems
from api.schemas import DISTINCT_DESCRIPTION, AnswerOut, AskRequest, FilterParam, check_question
from qa.defaults import MAX_ANSWERS
from qa.engine import MAX_QUESTION_CHARS, Engine
from qa.records import answer_record
from qa.types import Distinct

router = APIRouter(tags=["answers"], dependencies=[Depends(require_reader)])

ERRORS = problems(400, 401, 403, 404, 413, 422, 429, 503)


async def _answer(
    engine: Engine, delay_ms: int, question: str, top_k: int, data: object, answers: int, distinct: Distinct
) -> AnswerOut:
    if delay_ms:  # QA_DEBUG_DELAY_MS: lets browser tests see a slow answer
        await asyncio.sleep(delay_ms / 1000)
    where = await run_sync(engine.parse_filter, data) if data is not None else None
    answer = await run_sync(engine.ask, question, top_k=top_k, where=where, answers=answers, distinct=distinct)
    return AnswerOut.model_validate(answer_record(answer))


@router.post(
    "/ask", responses=problems(400, 401, 403, 404, 413, 415, 422, 429, 503), dependencies=[Depends(require_json)]
)
async def ask(body: AskRequest, engine: EngineDep, settings: SettingsDep) -> AnswerOut:
    """Answer a question: the same object as `qa ask --json`."""
    return await _answer(
        engine, settings.debug_delay_ms, body.question, body.top_k, body.filter, body.answers, body.distinct
    )


@router.get("/ask", responses=ERRORS)
async def ask_get(
    q: Annotated[
        str,
        Query(min_length=1, description=f"The question, 1 to {MAX_QUESTION_CHARS} characters"),
        AfterValidator(check_question),
    ],
    engine: EngineDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=20, description="Citations to return")] = 3,
    where: FilterParam = None,
    answers: Annotated[int, Query(ge=1, le=MAX_ANSWERS, description="Distinct answers to give")] = 1,
    distinct: Annotated[Distinct, Query(description=DISTINCT_DESCRIPTION)] = "quotes",
) -> AnswerOut:
    """Answer a question given in the URL: the same object as `POST /v1/ask`."""
    return await _answer(engine, settings.debug_delay_ms, q, k, where, answers, distinct)
