"""``/healthz`` (the process answers), ``/readyz`` (an index is loaded) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import EngineDep
from api.routes import problems
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up (it says nothing about the index)."""
    return Health(status="ok")


@router.get("/readyz", responses=problems(503))
async def readyz(engine: EngineDep) -> Ready:
    """An index is loaded and questions can be answered; 503 says why not."""
    index = engine.index
    return Ready(status="ready", documents=len(index.documents), passages=index.n_passages, model=engine.embedder.name)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    content, media_type = request.app.state.metrics.render()
    return Response(content, media_type=media_type)
