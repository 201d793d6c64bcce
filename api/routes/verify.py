"""``/v1/verify``: where stored citations' quotes are now (current, moved or gone)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends

from api.deps import EngineDep, require_reader, run_sync
from api.routes import problems
from api.schemas import VerdictOut, VerifyOut, VerifyRequest
from qa.engine import Engine
from qa.errors import DocumentNotFound
from qa.types import Document
from qa.verify import Cited, verify

router = APIRouter(tags=["answers"], dependencies=[Depends(require_reader)])


def _find(engine: Engine) -> Callable[[str], Document | None]:
    def find(document_id: str) -> Document | None:
        try:
            return engine.document(document_id)
        except DocumentNotFound:
            return None

    return find


@router.post("/verify", responses=problems(400, 401, 403, 404, 413, 422, 429, 503))
async def verify_citations(body: VerifyRequest, engine: EngineDep) -> VerifyOut:
    """Check citations returned earlier against the documents as they are now, in order."""
    cited = [Cited(c.document_id, c.quote, c.start, c.end) for c in body.citations]
    verdicts = await run_sync(verify, cited, _find(engine))
    return VerifyOut(results=[VerdictOut(status=v.status, start=v.start, end=v.end,
                                         document_version=v.document_version) for v in verdicts])  # fmt: skip
