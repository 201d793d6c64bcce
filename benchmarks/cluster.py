"""Past one machine: a local two-node Ray cluster against one process on the same cores, same run.

1. Build: ``qa.indexing.index_corpus`` of US Code files, in this process (the model on both
   cores) and on the cluster (``qa.cluster.RayRunner``: two embedding actors of one CPU each, one
   per node), alternating, twice each. Texts embedded per second over the whole build (the
   actors' start, each loading the model, included), the cluster's share of the local figure,
   per-actor throughput, and the hours it projects for 10M and 100M passages.
2. Serving: ``POST /v1/ask`` over XQuAD dev questions (an index of its articles in four segments)
   to ``qa serve`` and to ``qa serve --ray`` (2 shards, 2 answer replicas), one request to each in
   turn, one at a time, on 127.0.0.1: p50/p95 of each and their ratio.
3. Faults: the same Ray service under concurrency 8 for 60 s; at 10 s one shard replica is killed
   (SIGKILL). Every 200 is checked against the single process's answer; errors are counted by
   status; "whole again" is the time from the kill to the last failed request.

    python -m benchmarks.cluster              # about 15 minutes on 2 cores
    python -m benchmarks.cluster --smoke      # the default corpus, a few questions: checks it runs

The cluster is ``ray.cluster_utils.Cluster``: two real Ray nodes (raylet, object store) on this
machine, one CPU each, stopped at the end whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import CORPUS, USCODE, XQUAD, emit, log, machine, parser, summary, table
from benchmarks.http_load import run_loop, server

REPEATS = 2
PROJECTED = (10_000_000, 100_000_000)
NODES = (1, 10, 100)
KILL_AFTER_S = 10.0


@contextmanager
def local_cluster(nodes: int = 2) -> Iterator[Any]:
    """``nodes`` Ray nodes of one CPU each on this machine; shut down on exit."""
    # Every node, the GCS and Serve's proxy on 127.0.0.1 only (read when ray is imported; children inherit it).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 400 * 2**20, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def sample_corpus(target: Path, files: int, smoke: bool) -> Path:
    target.mkdir(parents=True)
    sources = sorted(CORPUS.iterdir()) if smoke or not USCODE.is_dir() else sorted(USCODE.rglob("*.md"))[:files]
    for source in sources:
        shutil.copy(source, target / source.name)
    return target


def build(opts: Any, cluster: Any, work: Path) -> dict[str, Any]:
    """Local and cluster builds of the same corpus, alternating; texts per second of each."""
    import qa.indexing
    from qa.cluster import RayRunner
    from qa.embed import SentenceTransformerEmbedder
    from qa.indexing import index_corpus

    corpus = sample_corpus(work / "corpus", opts.files, opts.smoke)
    embedder = SentenceTransformerEmbedder(threads=2)
    texts: list[int] = []
    runs: dict[str, list[float]] = {"local": [], "cluster": []}
    for _ in range(1 if opts.smoke else REPEATS):
        for where in ("local", "cluster"):
            runner = None if where == "local" else RayRunner(embedder.name, address=cluster.address, actors=2)
            seen: list[int] = []  # texts to embed, at each progress report

            def progress(done: int, total: int, seen: list[int] = seen) -> None:
                seen.append(total)

            started = time.perf_counter()
            report = index_corpus(corpus, work / where, embedder=embedder, runner=runner, force=True,
                                  progress=progress)  # fmt: skip
            seconds = time.perf_counter() - started
            texts.append(seen[-1])
            runs[where].append(seconds)
            log(f"{where}: {report.n_passages} passages, {texts[-1]} texts in {seconds:.1f} s")
    assert len(set(texts)) == 1, texts
    n_texts, passages = texts[0], report.n_passages
    rate = {where: n_texts / statistics.median(seconds) for where, seconds in runs.items()}
    # Over the whole build, actors' start (each loads the model) included: a longer build only gains.
    per_actor = rate["cluster"] / 2
    texts_per_passage = n_texts / passages
    projection = [
        {"passages": n, "nodes": nodes, "hours": round(n * texts_per_passage / (per_actor * nodes) / 3600, 1)}
        for n in PROJECTED
        for nodes in NODES
    ]
    return {
        "passages": passages,
        "texts": n_texts,
        "segment_passages": qa.indexing.SEGMENT_PASSAGES,
        "seconds": {where: [round(s, 2) for s in seconds] for where, seconds in runs.items()},
        "texts_per_s": {where: round(r, 1) for where, r in rate.items()},
        "cluster_share": round(rate["cluster"] / rate["local"], 3),
        "per_actor_texts_per_s": round(per_actor, 1),
        "texts_per_passage": round(texts_per_passage, 2),
        "projection": projection,
    }


def served_index(work: Path, smoke: bool) -> tuple[Path, list[str]]:
    """XQuAD dev's articles (the default corpus in --smoke) in four segments, and the questions to ask."""
    from qa.build import build_index, empty_index, update_index
    from qa.embed import SentenceTransformerEmbedder
    from qa.gold import load_squad
    from qa.ingest import load_corpus
    from qa.storage import save_index

    embedder = SentenceTransformerEmbedder()
    if smoke or not XQUAD.is_file():
        documents = load_corpus(CORPUS)[0]
        questions = ["How many agencies participate in Secure Communities?", "How many fusion centers are there?"]
    else:
        documents, items = load_squad(XQUAD)
        questions = [item.question for item in items]
    index = empty_index(embedder.name, embedder.dim, build_index(documents[:1], embedder).manifest.settings)
    for k in range(4):
        if part := documents[k::4]:
            index = update_index(index, embedder, add=part)
    save_index(index, work / "served")
    return work / "served", questions


def record(response: Any) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k != "took_ms"}


def overhead(single: str, ray: str, questions: list[str]) -> dict[str, Any]:
    """Each question to both services in turn, one at a time: latency of each, and whether they agree."""
    import httpx

    times: dict[str, list[float]] = {"qa serve": [], "qa serve --ray": []}
    differ = 0
    with httpx.Client(timeout=60) as client:
        for question in questions[:5]:  # warm up
            for base in (single, ray):
                client.post(f"{base}/v1/ask", json={"question": question})
        for question in questions:
            answers = []
            for name, base in (("qa serve", single), ("qa serve --ray", ray)):
                started = time.perf_counter()
                response = client.post(f"{base}/v1/ask", json={"question": question})
                times[name].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                answers.append(record(response))
            differ += answers[0] != answers[1]
    stats = {name: summary(samples) for name, samples in times.items()}
    return {
        "questions": len(questions),
        "different_answers": differ,
        "latency_ms": stats,
        "p50_ratio": round(stats["qa serve --ray"]["p50"] / stats["qa serve"]["p50"], 2),
    }


async def faults(base: str, expected: dict[str, dict[str, Any]], seconds: float, concurrency: int) -> dict[str, Any]:
    """Concurrent questions for ``seconds``; one shard replica killed after KILL_AFTER_S."""
    import httpx

    questions = list(expected)
    outcomes: list[tuple[float, str]] = []  # (time since start, outcome)
    started = time.perf_counter()
    killed: list[float] = []

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        i = offset
        while time.perf_counter() - started < seconds:
            question = questions[i % len(questions)]
            i += concurrency
            try:
                response = await client.post(f"{base}/v1/ask", json={"question": question})
                if response.status_code == 200:
                    outcome = "right" if record(response) == expected[question] else "wrong"
                else:
                    outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            outcomes.append((time.perf_counter() - started, outcome))

    async def killer() -> None:
        await asyncio.sleep(KILL_AFTER_S)
        pids = subprocess.run(["pgrep", "-f", "ServeReplica:qa:shard-0"], capture_output=True, text=True).stdout
        os.kill(int(pids.split()[0]), signal.SIGKILL)
        killed.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(killer(), *(worker(client, k) for k in range(concurrency)))
    counts: dict[str, int] = {}
    for _, outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    failed = [t for t, outcome in outcomes if outcome != "right"]
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "requests": len(outcomes),
        "outcomes": counts,
        "killed_at_s": round(killed[0], 1),
        "whole_again_after_s": round(max(failed) - killed[0], 1) if failed else 0.0,
    }


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline
    from qa.config import Settings
    from qa.embedders import load_embedder
    from qa.engine import engine_of
    from qa.records import answer_record
    from qa.storage import load_index

    offline()
    os.environ.setdefault("QA_READER_CANDIDATES", "0")  # the first ranker: what the shards change
    work = Path(tempfile.mkdtemp(prefix="qa-bench-cluster-"))
    try:
        with local_cluster() as cluster:
            built = build(opts, cluster, work)
            index_dir, questions = served_index(work, opts.smoke)
            asked = questions[: opts.questions]
            # The embedder a server loads (questions on the ONNX export, as in the replicas).
            engine = engine_of(load_index(index_dir), load_embedder(Settings().model, threads=1), Settings())
            expected = {q: {k: v for k, v in answer_record(engine.ask(q)).items() if k != "took_ms"} for q in asked}
            with server(index_dir, None) as single, server(index_dir, cluster.address) as ray:
                served = overhead(single, ray, asked)
            with server(index_dir, cluster.address) as ray:
                seconds = 15.0 if opts.smoke else opts.seconds
                fault = run_loop(faults(ray, expected, seconds, opts.concurrency))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"machine": machine(), "build": built, "serving": served, "faults": fault}


def render(payload: dict[str, Any]) -> str:
    b, s, f = payload["build"], payload["serving"], payload["faults"]
    out = [
        table(
            f"Build: {b['passages']} passages, {b['texts']} texts; this process (2 threads) against 2 actors "
            "of 1 CPU on 2 nodes",
            ["where", "seconds (each run)", "texts/s", "share of local"],
            [
                ["this process", ", ".join(map(str, b["seconds"]["local"])), b["texts_per_s"]["local"], 1.0],
                [
                    "Ray cluster",
                    ", ".join(map(str, b["seconds"]["cluster"])),
                    b["texts_per_s"]["cluster"],
                    b["cluster_share"],
                ],
            ],  # fmt: skip
        ),
        table(
            f"Projected embedding hours at {b['per_actor_texts_per_s']} texts/s per one-CPU actor "
            f"({b['texts_per_passage']} texts per passage), one actor per node",
            ["passages", "nodes", "hours"],
            [[p["passages"], p["nodes"], p["hours"]] for p in b["projection"]],
        ),
        table(
            f"Serving: {s['questions']} questions, one at a time, each to both "
            f"({s['different_answers']} answers differ)",
            ["service", "p50 ms", "p95 ms", "p99 ms"],
            [[name, v["p50"], v["p95"], v["p99"]] for name, v in s["latency_ms"].items()],
        ),
        f"p50 ratio (Ray Serve, 2 shards / one process): {s['p50_ratio']}\n",
        table(
            f"Faults: concurrency {f['concurrency']} for {f['seconds']} s, shard-0's replica killed at "
            f"{f['killed_at_s']} s",
            ["requests", "outcomes", "whole again after (s)"],
            [
                [
                    f["requests"],
                    ", ".join(f"{k}: {v}" for k, v in sorted(f["outcomes"].items())),
                    f["whole_again_after_s"],
                ]
            ],
        ),  # fmt: skip
        f"machine: {payload['machine']}",
    ]
    return "\n".join(out)


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--files", type=int, default=300, help="US Code files to build (default 300)")
    args.add_argument("--questions", type=int, default=300, help="XQuAD questions for the latency comparison")
    args.add_argument("--seconds", type=float, default=60.0, help="length of the fault run")
    args.add_argument("--concurrency", type=int, default=8, help="concurrent requests in the fault run")
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
