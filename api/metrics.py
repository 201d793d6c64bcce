"""Prometheus metrics, in a registry of the app's own (two apps in one process do not mix).

* ``qa_http_requests_total{collection,method,route,status}`` and
  ``qa_http_request_duration_seconds{collection,method,route,status}``: ``route`` is the
  route template (``/v1/documents/{document_id:path}``), or ``unmatched``, and ``collection``
  the collection asked (``default`` for the routes without one, ``unknown`` for a name that is
  not an open collection), so that arbitrary URLs cannot create unbounded label sets.
* ``qa_index_documents{collection}`` and ``qa_index_passages{collection}``: read from each open
  collection's engine.
* ``qa_model_load_seconds``: how long the embedding model took to load at startup.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the measured warm /v1/ask time (tens of ms) up to the request timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"
UNKNOWN = "unknown"

if TYPE_CHECKING:
    from api.state import Service


class Metrics:
    """The app's collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("collection", "method", "route", "status")
        self.requests = Counter("qa_http_requests", "HTTP requests answered", labels, registry=self.registry)
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Time to answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.documents = Gauge(
            "qa_index_documents", "Documents in the collection's index", ("collection",), registry=self.registry
        )
        self.passages = Gauge(
            "qa_index_passages", "Passages in the collection's index", ("collection",), registry=self.registry
        )
        self.model_load = Gauge("qa_model_load_seconds", "Seconds to load the embedding model", registry=self.registry)

    def watch(self, service: Service) -> None:
        """Report the index size of a collection's service from now on (as long as the process runs)."""

        def size() -> tuple[int, int]:
            engine = service.engine
            return (len(engine.index.documents), engine.index.n_passages) if engine is not None else (0, 0)

        name = service.collection.name
        self.documents.labels(name).set_function(lambda: float(size()[0]))
        self.passages.labels(name).set_function(lambda: float(size()[1]))

    def observe(self, collection: str, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(collection, method, route, str(status)).inc()
        self.latency.labels(collection, method, route, str(status)).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def collection_label(scope: Scope) -> str:
    """The collection a request named, if it is one the app has open; ``default`` for the other routes."""
    name = (scope.get("path_params") or {}).get("collection")
    if name is None:
        return "default"
    collections = getattr(getattr(scope.get("app"), "state", None), "collections", None)
    return str(name) if collections is not None and name in collections.services else UNKNOWN


def route_template(scope: Scope) -> str:
    """The template of the route that handled (or would handle) a request, at its full path.

    Matched against ``app.state.routes`` (``api.main.flat_routes``): the route FastAPI records in the
    scope is the included router's own, without its prefix.
    """
    state = getattr(scope.get("app"), "state", None)
    partial = None
    for candidate in getattr(state, "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(candidate.path)
        if match is Match.PARTIAL and partial is None:
            partial = str(candidate.path)
    return partial or UNMATCHED


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(
                collection_label(scope), scope["method"], route_template(scope), status["code"], seconds
            )
