"""The FastAPI app: ``create_app(settings)``; the lifespan loads the model and index once.

Run it with ``qa serve`` (uvicorn, ``api.main:create_app`` as a factory).
Tests build apps directly and may hand in a loaded engine or embedder, so one
model serves many apps::

    app = create_app(Settings(index_dir=tmp), engine=engine)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route

from api import errors, middleware, pages
from api.collections import Collections
from api.deps import collection_path
from api.errors import PROBLEM_JSON
from api.metrics import Metrics
from api.routes import ask, collections, docs, documents, health, search, verify
from api.state import Service, start
from qa.collections import sweep
from qa.config import Settings, get_settings
from qa.embed import Embedder
from qa.engine import Engine
from qa.keys import KeysFile
from qa.retrieve import LOCAL, Searcher

DESCRIPTION = (
    "Citation-backed extractive question answering: every answer is a verbatim quote "
    "with its document, section and exact character offsets. Errors are RFC 9457 problem details."
)


def _version() -> str:
    try:
        return version("qa-cite")
    except PackageNotFoundError:
        return "0.0.0"


def _lifespan(engine: Engine | None) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service: Service = app.state.service
        service.write_lock, service.reload_lock = asyncio.Lock(), asyncio.Lock()
        await anyio.to_thread.run_sync(sweep, service.index_dir)
        await anyio.to_thread.run_sync(start, service, engine)
        app.state.metrics.model_load.set(service.model_load_seconds)
        yield

    return lifespan


def _problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error bodies as application/problem+json, which is what they are sent as."""
    for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
        for status, response in operation.get("responses", {}).items():
            content = response.get("content", {})
            if status[:1] in "45" and "application/json" in content:
                content[PROBLEM_JSON] = content.pop("application/json")
    return schema


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = _problem_media_types(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def flat_routes(app: FastAPI, included: list[tuple[APIRouter, str]]) -> list[Route]:
    """Every route at its full path, for matching only (Allow headers, metric labels): FastAPI nests
    included routers instead of copying their routes."""

    async def unused(request: Request) -> None:  # pragma: no cover - never routed to
        raise AssertionError(request)

    flat = [route for route in app.router.routes if isinstance(route, Route)]
    for router, prefix in included:
        for route in router.routes:
            if isinstance(route, Route):
                copy = Route(prefix + route.path, unused, methods=sorted(route.methods or ()))
                copy.methods = set(route.methods or ())  # as declared: Starlette would add HEAD to GET
                flat.append(copy)
    return flat


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    embedder: Embedder | None = None,
    searcher: Searcher = LOCAL,
) -> FastAPI:
    """Build the app.

    Args:
        settings: Defaults to the ``QA_*`` environment (``qa.config.get_settings``).
        engine: An engine to serve instead of loading one (tests share one model this way).
        embedder: A model to load the index of ``settings.index_dir`` with, instead of loading one.
        searcher: Where retrieval's first stage runs (``api.cluster``: on the shards of a Ray Serve app).

    Returns:
        The app; the model and index load when its lifespan starts.
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="qa-cite",
        version=_version(),
        description=DESCRIPTION,
        lifespan=_lifespan(engine),
        docs_url=None,
        redoc_url=None,
        # No 307 from /v1/ask/ to /v1/ask: Starlette builds its Location from the request's Host header,
        # which a client chooses; a path with a trailing slash is a 404 like any other unknown path.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.keys = keys = KeysFile(settings.keys_file, settings.api_keys)  # a bad keys file stops the start
    app.state.engine = None  # the default collection's engine (api.state.Service.swap)
    app.state.service = service = Service(settings, app.state, embedder=embedder, searcher=searcher)
    app.state.metrics = metrics = Metrics()
    app.state.collections = Collections(service, on_open=metrics.watch)
    metrics.watch(service)
    errors.install(app)
    # A collection's content: at /v1/... (the viewer at /view/...) for the default collection, and at
    # /v1/collections/{name}/... for every collection.
    content = [(ask.router, "/v1"), (search.router, "/v1"), (documents.router, "/v1"), (verify.router, "/v1"),
               (pages.view_router, "")]  # fmt: skip
    collection = "/v1/collections/{collection}"
    others = [(health.router, ""), (collections.router, ""), (docs.router, ""), (pages.router, "")]
    included = content + [(router, collection) for router, _ in content] + others
    for router, prefix in included:
        extra = [Depends(collection_path)] if prefix == collection else []
        app.include_router(router, prefix=prefix, dependencies=extra)
    app.state.routes = flat_routes(app, included)
    middleware.install(app, settings, metrics, lambda token: keys.ring().scopes_of(token) is not None)
    _install_openapi(app)
    return app
