"""HTTP load on loopback: ``POST /v1/ask`` at concurrency 1, 8 and 32, against in-process ``Engine.ask``.

The script builds an index of ``corpus/`` with ``qa index`` in a temporary
folder, starts ``qa serve`` on a free 127.0.0.1 port and times its cold start
(process start to ``/readyz`` 200). Each concurrency level then sends a bounded
number of requests (and stops early at a time bound) from asyncio workers
sharing one ``httpx.AsyncClient``. Questions are the gold questions and
paraphrases of them, each used once across the run, so the server's query
cache never answers and every request runs the model. The baseline asks the
same questions through ``Engine.ask`` in this process (cache cleared): the
difference is what HTTP, JSON and the event loop cost. Client and server share
the machine's cores, as they would on one host.

    python -m benchmarks.http_load
    python -m benchmarks.http_load --requests 100 --json
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import CORPUS, GOLD, default_engine, emit, log, machine, parser, summary, table, timed

LEVELS = (1, 8, 32)
# Ways a user may put the same question: every request is a new string.
TEMPLATES = (
    "{q}",
    "{l}",
    "Please tell me: {q}",
    "{s}",
    "Question: {q}",
    "Can you say {l}",
    "I would like to know {l}",
    "Quick one. {q}",
    "{q} Thanks.",
    "According to the documents, {l}",
)
READY_TIMEOUT_S = 120


def run_loop(coroutine: Any) -> Any:
    """Run a coroutine on a fresh event loop in its own thread (the caller may already run a loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def paraphrases() -> list[str]:
    """Every gold question in every template, interleaved so that consecutive requests differ."""
    from qa.gold import load_jsonl

    gold = [item.question for item in load_jsonl(GOLD)]
    return [
        template.format(q=q, l=q[0].lower() + q[1:], s=q.rstrip("?"))
        for template in TEMPLATES
        for q in gold
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> float:
    """Seconds until ``/readyz`` answers 200."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < READY_TIMEOUT_S:
        if server.poll() is not None:
            raise RuntimeError(f"qa serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"qa serve not ready after {READY_TIMEOUT_S} s")


@contextmanager
def server(index_dir: Path, ray_address: str | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """``qa serve`` (or ``qa serve --ray ADDRESS``) on a free loopback port, with ``env`` added to this process's
    environment, until the block ends; yields its base URL."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("qa")), "serve", "--port", str(port), "--index-dir", str(index_dir)]
    if ray_address is not None:
        command += ["--ray", ray_address, "--shards", "2", "--answer-replicas", "2"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        log(f"{'qa serve --ray' if ray_address else 'qa serve'} ready in {wait_ready(base, process):.1f} s")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


async def load(base: str, asked: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """Send ``asked`` with ``concurrency`` workers, stopping new requests after ``seconds``."""
    import httpx

    queue = list(reversed(asked))
    times: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue and time.perf_counter() < deadline:
            question = queue.pop()
            started = time.perf_counter()
            try:
                response = await client.post(f"{base}/v1/ask", json={"question": question})
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            times.append((time.perf_counter() - started) * 1000)

    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(times),
        "errors": len(errors),
        "error_samples": errors[:3],
        "throughput_rps": round(len(times) / wall, 2),
        **summary(times),
    }


def in_process(index_dir: Path, asked: list[str], threads: int) -> dict[str, Any]:
    """``Engine.ask`` on the same index and questions, cache cleared, with the embedder a server loads: the
    baseline."""
    from qa.defaults import DEFAULT_MODEL
    from qa.embedders import load_embedder
    from qa.storage import load_index

    embedder = load_embedder(DEFAULT_MODEL, threads=threads)
    engine = default_engine(load_index(index_dir, model=embedder.name), embedder)
    for question in asked[:5]:
        engine.ask(question)
    times = []
    clear = getattr(embedder, "clear_cache", lambda: None)  # the models that cache questions
    for question in asked:
        clear()
        times.append(timed(engine.ask, question)[1])
    return summary(times)


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline

    offline()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-http-"))
    qa = str(Path(sys.executable).with_name("qa"))
    env = {
        **os.environ,
        "QA_INDEX_DIR": str(work / "index"),
        "QA_CORPUS_DIR": str(CORPUS),
        "QA_THREADS": str(opts.threads),
    }
    if opts.smoke:
        env["QA_MODEL"] = "all-MiniLM-L6-v2"
    levels = (1, 4) if opts.smoke else LEVELS
    per_level = 6 if opts.smoke else opts.requests
    pool = paraphrases()
    try:
        index_ms = 0.0
        if not opts.smoke:  # smoke: `qa serve` builds the missing index itself
            log("building the index of corpus/ with qa index")
            build = [qa, "index", str(CORPUS)]
            index_ms = timed(subprocess.run, build, env=env, check=True, capture_output=True)[1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [qa, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            cold_start = wait_ready(base, server)
            log(f"qa serve ready in {cold_start:.2f} s")
            run_loop(load(base, pool[-10:], 2, 30))  # warm up: model, allocator, connections
            results = []
            for n, level in enumerate(levels):
                asked = pool[n * per_level : (n + 1) * per_level]
                log(f"concurrency {level}: {len(asked)} requests")
                results.append(run_loop(load(base, asked, level, opts.seconds)))
        finally:
            server.terminate()
            server.wait(timeout=30)
        baseline = in_process(work / "index", pool[:per_level], opts.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "machine": machine(),
        "threads": opts.threads,
        "index_build_s": round(index_ms / 1000, 2),
        "cold_start_s": round(cold_start, 2),
        "levels": results,
        "in_process": baseline,
    }


def render(payload: dict[str, Any]) -> str:
    base = payload["in_process"]
    rows = [["in-process Engine.ask", "-", base["n"], 0, round(1000 / base["mean"], 2), base["p50"], base["p99"]]]
    rows += [
        ["HTTP /v1/ask", r["concurrency"], r["requests"], r["errors"], r["throughput_rps"], r["p50"], r["p99"]]
        for r in payload["levels"]
    ]
    title = (
        f"HTTP load on 127.0.0.1 (torch threads {payload['threads']}; qa index {payload['index_build_s']} s, "
        f"qa serve cold start to ready {payload['cold_start_s']} s)"
    )
    return table(title, ["path", "concurrency", "requests", "errors", "req/s", "p50 ms", "p99 ms"], rows)


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--requests", type=int, default=150, help="requests per concurrency level")
    args.add_argument("--seconds", type=float, default=90, help="stop sending at a level after this long")
    args.add_argument("--threads", type=int, default=1, help="QA_THREADS for the server and the baseline")
    opts = args.parse_args()
    most = len(paraphrases()) // len(LEVELS)
    if not 1 <= opts.requests <= most:
        # Each level asks questions no other level asked (the server caches answers): more would leave
        # the last level with none.
        args.error(
            f"--requests must be between 1 and {most}: {len(LEVELS)} levels share {most * len(LEVELS)} questions"
        )
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
