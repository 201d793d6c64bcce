"""Token-bucket rate limiting per API key, or per client address for everyone else.

``QA_RATE_LIMIT=60/minute`` gives each client a bucket of 60 tokens that
refills at one a second; a request takes one token, and an empty bucket
answers 429 with ``Retry-After`` (whole seconds until a token is back).

A request that carries a valid key draws from that key's bucket, so an
evaluation script behind a shared address is limited by its key; any other
request (no key, or a wrong one, so made-up keys buy nothing) draws from its
address's bucket. Health, readiness and metrics are never limited: probes
must not be starved by the traffic they watch.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import problem

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Buckets kept before full (idle) ones are dropped: bounds memory under address churn.
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Buckets of ``capacity`` tokens refilled at ``capacity / period`` tokens a second."""

    def __init__(self, capacity: int, period: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Take a token for ``key``.

        Returns:
            0 when the request may go ahead, else the seconds until a token is available.
        """
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= MAX_BUCKETS:  # all busy: drop the oldest
            del self._buckets[next(iter(self._buckets))]


class RateLimitMiddleware:
    """Answers 429 problem+json when the client's bucket is empty."""

    def __init__(self, app: ASGIApp, *, buckets: TokenBuckets, is_valid_key: Callable[[str], bool]) -> None:
        self.app = app
        self.buckets = buckets
        self.is_valid_key = is_valid_key

    def _identity(self, scope: Scope) -> str:
        auth = Headers(scope=scope).get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token and self.is_valid_key(token):
            return "key:" + hashlib.sha256(token.encode("latin-1")).hexdigest()
        client = scope.get("client")
        return "addr:" + (client[0] if client else "unknown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self._identity(scope))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            response = problem(
                429,
                f"rate limit exceeded (QA_RATE_LIMIT); retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
