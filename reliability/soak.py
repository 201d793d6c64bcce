"""Memory soak: a real ``qa serve`` answering steadily for minutes, with a document added and removed
every half minute, while its RSS, threads and open files are sampled from /proc/PID.

After a warm-up (the first fifth of the run, at least a minute: the query cache fills, the allocator
settles), the median RSS of the last tenth of the run must be within 5% of the median of the minute
after the warm-up. Threads and open file descriptors must not keep growing either. Figures go to
``artifacts/reliability/soak.json``; the exit code is 1 if a check fails.

    python -m reliability.soak               # 10 minutes
    python -m reliability.soak --minutes 2   # shorter
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from reliability.common import (
    Server,
    log,
    machine,
    open_fds,
    percentile,
    proc_status,
    question_mix,
    start_server,
    stop_server,
    write_json,
)

KEY = "soak-writer-key"
MAX_GROWTH_PCT = 5.0
SAMPLE_EVERY = 5.0  # seconds between /proc readings
WRITE_EVERY = 30.0  # seconds between add-then-delete cycles
# Threads and descriptors may vary with in-flight requests, but not drift: this much over the baseline fails.
MAX_EXTRA_THREADS = 8
MAX_EXTRA_FDS = 16
NOTE = (
    "# Soak note {n}\n\n## Llamas\n\nLlama herd {n} grazes on the northern ridge of the valley.\n\n"
    "## Alpacas\n\nAlpaca fleece from herd {n} is sheared every spring.\n"
)


async def _reader(client: httpx.AsyncClient, seed: int, until: float, stats: Counter[str], lat: list[float]) -> None:
    questions = question_mix(seed)
    rng = random.Random(seed)
    while time.monotonic() < until and stats["requests"] < stats["max_requests"]:
        question, _ = next(questions)
        started = time.perf_counter()
        try:
            response = await client.post("/v1/ask", json={"question": question, "top_k": rng.choice((1, 3))})
            stats[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            stats[type(exc).__name__] += 1
        stats["requests"] += 1
        lat.append((time.perf_counter() - started) * 1000)


async def _writer(client: httpx.AsyncClient, until: float, every: float, stats: Counter[str]) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    n = 0
    while every and time.monotonic() + every < until:
        await asyncio.sleep(every)
        n += 1
        doc_id = f"soak/note-{n}.md"
        added = await client.post("/v1/documents", json={"document_id": doc_id, "text": NOTE.format(n=n)}, headers=auth)
        asked = await client.get("/v1/ask", params={"q": f"Where does llama herd {n} graze?"})
        removed = await client.delete(f"/v1/documents/{doc_id}", headers=auth)
        for step, response, expected in (("add", added, 201), ("ask", asked, 200), ("delete", removed, 204)):
            stats[f"write {step} {response.status_code}"] += 1
            if response.status_code != expected:
                stats["write failures"] += 1


async def _sampler(pid: int, until: float, samples: list[dict[str, float]], started: float) -> None:
    while time.monotonic() < until:
        status = proc_status(pid)
        samples.append(
            {
                "t": round(time.monotonic() - started, 1),
                "rss_mib": round(status["VmRSS"] / 1024, 1),
                "hwm_mib": round(status["VmHWM"] / 1024, 1),
                "threads": status["Threads"],
                "fds": open_fds(pid),
            }
        )
        await asyncio.sleep(SAMPLE_EVERY)


async def _soak(
    server: Server, seconds: float, concurrency: int, max_requests: int, write_every: float
) -> dict[str, Any]:
    stats: Counter[str] = Counter(max_requests=max_requests)
    latencies: list[float] = []
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    until = started + seconds
    async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as client:
        await asyncio.gather(
            _sampler(server.pid, until, samples, started),
            _writer(client, until, write_every, stats),
            *(_reader(client, seed, until, stats, latencies) for seed in range(concurrency)),
        )
    del stats["max_requests"]
    ordered = sorted(latencies)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "concurrency": concurrency,
        "write_every_s": write_every,
        "requests": stats["requests"],
        "statuses": {k: v for k, v in sorted(stats.items()) if k != "requests"},
        "p50_ms": round(percentile(ordered, 50), 1),
        "p99_ms": round(percentile(ordered, 99), 1),
        "samples": samples,
    }


def judge(result: dict[str, Any]) -> list[str]:
    """Add the growth figures to ``result`` and return the failed checks."""
    samples = result["samples"]
    warmup = max(60.0, result["seconds"] / 5)
    after = [s for s in samples if warmup <= s["t"] < warmup + 60.0]
    tail = samples[-max(1, len(samples) // 10) :]
    failures = []
    if not after:
        return ["the soak was too short to judge: run it for at least 2 minutes"]
    baseline = round(statistics.median(s["rss_mib"] for s in after), 1)
    final = round(statistics.median(s["rss_mib"] for s in tail), 1)
    growth = (final - baseline) / baseline * 100
    result.update(
        warmup_s=warmup,
        baseline_rss_mib=baseline,
        final_rss_mib=final,
        peak_rss_mib=max(s["hwm_mib"] for s in samples),
        rss_growth_pct=round(growth, 2),
        threads=[after[0]["threads"], tail[-1]["threads"]],
        fds=[after[0]["fds"], tail[-1]["fds"]],
    )
    if growth >= MAX_GROWTH_PCT:
        failures.append(f"RSS grew {growth:.1f}% after warm-up ({baseline} -> {final} MiB)")
    if max(s["threads"] for s in tail) > after[0]["threads"] + MAX_EXTRA_THREADS:
        failures.append(f"threads grew: {result['threads']}")
    if max(s["fds"] for s in tail) > after[0]["fds"] + MAX_EXTRA_FDS:
        failures.append(f"open files grew: {result['fds']}")
    expected = ("200", "write add 201", "write ask 200", "write delete 204")
    bad = {k: v for k, v in result["statuses"].items() if k not in expected}
    if bad:
        failures.append(f"requests failed: {bad}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--write-every", type=float, default=WRITE_EVERY, help="seconds between writes; 0: none")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="stop after this many, whatever the time")
    parser.add_argument("--index-dir", type=Path, help="reuse this index (default: a fresh one of corpus/)")
    parser.add_argument("--name", default="soak", help="figures file name")
    args = parser.parse_args(argv)
    index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="qa-soak-")) / "index"
    log_path = Path(tempfile.mkdtemp(prefix="qa-soak-logs-")) / "serve.log"
    server = start_server(index_dir, log_path, {"QA_API_KEYS": KEY})
    log(f"soaking {server.url} (pid {server.pid}) for {args.minutes:g} min; log {log_path}")
    try:
        result = asyncio.run(_soak(server, args.minutes * 60, args.concurrency, args.max_requests, args.write_every))
    finally:
        exit_code = stop_server(server)
    result = {"machine": machine(), **result, "exit_code": exit_code}
    result["failures"] = judge(result)
    path = write_json(args.name, result)
    log(
        f"{result['requests']} requests, RSS {result.get('baseline_rss_mib')} -> {result.get('final_rss_mib')} MiB "
        f"({result.get('rss_growth_pct')}%), figures: {path}"
    )
    for failure in result["failures"]:
        log(f"FAILED: {failure}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
