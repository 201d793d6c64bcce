"""Prometheus metrics, in a registry of the app's own (two apps in one process do not mix).

* ``qa_http_requests_total{method,route,status}`` and
  ``qa_http_request_duration_seconds{method,route,status}``: ``route`` is the
  route template (``/v1/documents/{document_id:path}``), or ``unmatched``, so
  that arbitrary URLs cannot create unbounded label sets.
* ``qa_index_documents`` and ``qa_index_passages``: read from the engine being served.
* ``qa_model_load_seconds``: how long the embedding model took to load at startup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the measured warm /v1/ask time (tens of ms) up to the request timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"


class Metrics:
    """The app's collectors."""

    def __init__(self, index_size: Callable[[], tuple[int, int]]) -> None:
        """Args:
        index_size: Returns (documents, passages) of the engine being served, (0, 0) without one.
        """
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter("qa_http_requests", "HTTP requests answered", labels, registry=self.registry)
        self.latency = Histogram(
            "qa_http_request_duration_seconds",
            "Time to answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        documents = Gauge("qa_index_documents", "Documents in the index being served", registry=self.registry)
        documents.set_function(lambda: float(index_size()[0]))
        passages = Gauge("qa_index_passages", "Passages in the index being served", registry=self.registry)
        passages.set_function(lambda: float(index_size()[1]))
        self.model_load = Gauge("qa_model_load_seconds", "Seconds to load the embedding model", registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_template(scope: Scope) -> str:
    """The template of the route that handled (or would handle) a request."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    state = getattr(scope.get("app"), "state", None)
    for candidate in getattr(state, "routes", ()):
        match, _ = candidate.matches(scope)
        if match is not Match.NONE and hasattr(candidate, "path"):
            return str(candidate.path)
    return UNMATCHED


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
            self.metrics.observe(scope["method"], route_template(scope), status["code"], time.perf_counter() - started)
