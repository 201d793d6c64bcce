"""Bounded load on a real ``qa serve`` (127.0.0.1): /v1/ask at concurrency 1, 8 and 32, then over a rate limit.

Phase one serves with ``QA_RATE_LIMIT`` far above what the machine can do (the limiter runs, never
refuses) and ``QA_CORS_ORIGINS`` set: every request must succeed. Phase two restarts the server with a low
limit and sends a concurrent burst: the answers past the limit must be 429 with ``Retry-After``, none a
5xx, and CORS headers must stay right on both. Each phase stops after its seconds or ``--max-requests``,
whichever comes first. Figures go to ``artifacts/reliability/load.json``; the exit code is 1 if a check fails.

    python -m reliability.load            # 3 x 60 s, then a 20 s burst over the limit
    python -m reliability.load --quick    # 3 x 4 s, then 3 s: what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reliability.common import (
    Server,
    log,
    machine,
    percentile,
    proc_status,
    question_mix,
    start_server,
    stop_server,
    write_json,
)

ORIGIN = "https://partner.example"
EVIL_ORIGIN = "https://evil.example"
# Far above what 2 cores answer (about 30 requests a second): the limiter is on the path but never refuses.
HIGH_LIMIT = "1000000/minute"
LOW_LIMIT = "5/second"  # a bucket of 5, refilled at 5 a second, for every client address
GET_SHARE = 0.25  # GET /v1/ask?q= for links and simple clients; the rest POST JSON
CLIENT_TIMEOUT = 60.0


@dataclass
class Tally:
    """What one phase saw."""

    latencies_ms: list[float] = field(default_factory=list)
    one_off_ms: list[float] = field(default_factory=list)  # questions never asked before: no cache hit
    statuses: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)  # failed checks, by kind
    retry_after: Counter[str] = field(default_factory=Counter)

    def check_cors(self, origin: str | None, response: httpx.Response) -> None:
        allowed = response.headers.get("access-control-allow-origin")
        if origin == ORIGIN and allowed != ORIGIN:
            self.problems["allowed origin without Access-Control-Allow-Origin"] += 1
        if origin != ORIGIN and allowed is not None:
            self.problems["Access-Control-Allow-Origin for an origin not on the list"] += 1
        if response.headers.get("x-content-type-options") != "nosniff":
            self.problems["response without X-Content-Type-Options: nosniff"] += 1


def _request(rng: random.Random, question: str) -> tuple[str, str, dict[str, Any]]:
    if rng.random() < GET_SHARE:
        return "GET", "/v1/ask", {"params": {"q": question, "k": 3}}
    return "POST", "/v1/ask", {"json": {"question": question, "top_k": rng.choice((1, 3, 5))}}


async def _worker(
    client: httpx.AsyncClient,
    questions: Iterator[tuple[str, bool]],
    rng: random.Random,
    tally: Tally,
    until: float,
    budget: list[int],
) -> None:
    while time.monotonic() < until and budget[0] > 0:
        budget[0] -= 1
        question, one_off = next(questions)
        method, path, kwargs = _request(rng, question)
        origin = rng.choice((ORIGIN, EVIL_ORIGIN, None))
        headers = {"Origin": origin} if origin else {}
        started = time.perf_counter()
        try:
            response = await client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            tally.statuses[type(exc).__name__] += 1
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        tally.latencies_ms.append(elapsed_ms)
        if one_off:
            tally.one_off_ms.append(elapsed_ms)
        tally.statuses[str(response.status_code)] += 1
        tally.check_cors(origin, response)
        if response.status_code == 429:
            tally.retry_after[response.headers.get("retry-after", "(missing)")] += 1
        elif response.status_code == 200 and not isinstance(response.json().get("answerable"), bool):
            tally.problems["200 without an answer object"] += 1


async def _phase(server: Server, concurrency: int, seconds: float, max_requests: int, seed: int) -> dict[str, Any]:
    tally = Tally()
    rng = random.Random(seed)
    questions = question_mix(seed)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    rss_samples: list[int] = []

    async def sample_rss() -> None:
        while True:
            rss_samples.append(proc_status(server.pid)["VmRSS"])
            await asyncio.sleep(1.0)

    async with httpx.AsyncClient(base_url=server.url, timeout=CLIENT_TIMEOUT, limits=limits) as client:
        sampler = asyncio.create_task(sample_rss())
        started = time.monotonic()
        budget = [max_requests]
        workers = [_worker(client, questions, rng, tally, started + seconds, budget) for _ in range(concurrency)]
        await asyncio.gather(*workers)
        elapsed = time.monotonic() - started
        sampler.cancel()
    return _figures(tally, concurrency, elapsed, rss_samples)


def _figures(tally: Tally, concurrency: int, elapsed: float, rss: list[int]) -> dict[str, Any]:
    ordered = sorted(tally.latencies_ms)
    one_off = sorted(tally.one_off_ms)
    ok = tally.statuses.get("200", 0)
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests": sum(tally.statuses.values()),
        "ok": ok,
        "throughput_rps": round(ok / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(percentile(ordered, 50), 1),
        "p90_ms": round(percentile(ordered, 90), 1),
        "p99_ms": round(percentile(ordered, 99), 1),
        "max_ms": round(ordered[-1], 1) if ordered else 0.0,
        "one_off_p50_ms": round(percentile(one_off, 50), 1),
        "one_off_p99_ms": round(percentile(one_off, 99), 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "errors": sum(n for status, n in tally.statuses.items() if status != "200"),
        "server_5xx": sum(n for status, n in tally.statuses.items() if status.startswith("5")),
        "retry_after": dict(tally.retry_after),
        "failed_checks": dict(tally.problems),
        "rss_mib": [round(min(rss) / 1024, 1), round(max(rss) / 1024, 1)] if rss else [],
    }


def _check_limited(phase: dict[str, Any], seconds: float, capacity: int, rate: float) -> list[str]:
    failures = []
    if phase["server_5xx"] or set(phase["statuses"]) - {"200", "429"}:
        failures.append(f"over the limit: statuses other than 200/429: {phase['statuses']}")
    if not phase["statuses"].get("429"):
        failures.append("over the limit: no 429 at all")
    bad_retry = {value: n for value, n in phase["retry_after"].items() if not (value.isdigit() and int(value) >= 1)}
    if bad_retry:
        failures.append(f"429 without a whole-second Retry-After: {bad_retry}")
    allowed = capacity + rate * seconds + rate  # the bucket, its refill, and one second of slack for timing
    if phase["ok"] > allowed:
        failures.append(f"over the limit: {phase['ok']} answered, at most {allowed:g} allowed")
    return failures


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = 4.0 if args.quick else args.seconds
    burst = 3.0 if args.quick else args.burst_seconds
    index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="qa-load-")) / "index"
    log_dir = Path(tempfile.mkdtemp(prefix="qa-load-logs-"))
    result: dict[str, Any] = {"machine": machine(), "quick": args.quick, "phases": [], "failures": []}
    env = {"QA_RATE_LIMIT": HIGH_LIMIT, "QA_CORS_ORIGINS": ORIGIN}
    log(f"starting qa serve on {index_dir} (builds the default corpus's index if missing)")
    server = start_server(index_dir, log_dir / "serve.log", env)
    try:
        result["rss_ready_mib"] = round(proc_status(server.pid)["VmRSS"] / 1024, 1)
        for concurrency in args.concurrency:
            log(f"concurrency {concurrency} for {seconds:g} s")
            phase = asyncio.run(_phase(server, concurrency, seconds, args.max_requests, seed=concurrency))
            log(f"  {phase['ok']} ok, {phase['throughput_rps']} req/s, p50 {phase['p50_ms']} ms, p99 {phase['p99_ms']}")
            result["phases"].append(phase)
            if phase["errors"] or phase["failed_checks"]:
                result["failures"].append(f"concurrency {concurrency}: {phase['statuses']} {phase['failed_checks']}")
    finally:
        result["exit_code"] = stop_server(server)
    log(f"restarting with QA_RATE_LIMIT={LOW_LIMIT}: a burst at concurrency 8 for {burst:g} s")
    server = start_server(index_dir, log_dir / "serve-limited.log", {**env, "QA_RATE_LIMIT": LOW_LIMIT})
    try:
        limited = asyncio.run(_phase(server, 8, burst, args.max_requests, seed=99))
    finally:
        stop_server(server)
    limited["rate_limit"] = LOW_LIMIT
    result["rate_limited"] = limited
    result["failures"] += _check_limited(limited, limited["seconds"], capacity=5, rate=5.0)
    result["failures"] += [f"over the limit: {kind} ({n})" for kind, n in limited["failed_checks"].items()]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s per phase and a 3 s burst (CI)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per concurrency level")
    parser.add_argument("--burst-seconds", type=float, default=20.0, help="seconds of the over-the-limit burst")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-requests", type=int, default=50_000, help="per phase, whatever the time")
    parser.add_argument("--index-dir", type=Path, help="reuse this index (default: a fresh one of corpus/)")
    parser.add_argument("--name", default=None, help="figures file name [default: load or load-quick]")
    args = parser.parse_args(argv)
    result = run(args)
    path = write_json(args.name or ("load-quick" if args.quick else "load"), result)
    for failure in result["failures"]:
        log(f"FAILED: {failure}")
    log(f"figures: {path}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
