"""Metadata filters and collections: filtered query latency beside unfiltered, and many collections' memory.

1. **Filters** (in process, the real model): ``synthetic_index`` rows (``benchmarks/corpora.py``) where
   every row is a document of its own, tagged so that ``{"tags": "p1"}``, ``p10`` and ``p50`` match 1%,
   10% and 50% of the passages. Each question is asked whole (``Engine.ask``) unfiltered and under each
   filter in turn, so the four share the machine's noise; p50 and p95 of each, and the cost of the first
   filtered query of a segment (its filter table is made then). Recall@10 of filtered dense search
   against brute force over the matching passages.
2. **Collections** (``qa serve`` subprocesses on loopback): one server holding ``--collections`` collections
   of ``--collection-size`` passages (copies of the first real passages, each collection its own files),
   against one server holding one collection of ``collections * collection_size`` synthetic passages:
   resident memory once every collection has answered a question, and the p50 of questions to the
   first collection before and after the others were opened (an idle collection should cost nothing).

    python -m benchmarks.filters                      # 100k passages, 50 collections of 1k
    python -m benchmarks.filters --passages 10000 --collections 5 --json
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import CACHE, emit, log, machine, parser, summary, table
from benchmarks.corpora import base_index, only_segment, sub_index, synthetic_index, synthetic_segments
from benchmarks.latency import questions
from qa.embed import Embedder
from qa.engine import Engine
from qa.index import VectorIndex
from qa.retrieve import dense_search, matching_rows

SHARES = {"p1": 100, "p10": 10, "p50": 2}  # tag -> every how many documents carry it


def tag(index: VectorIndex) -> None:
    """Give the documents of the index's segment the tags p1, p10, p50 (1 in 100, 10, 2 of them, by order).

    The segment's documents are replaced before any filtered search, which is when a segment's filter
    table is made from them.
    """
    segment = only_segment(index)
    ordered = sorted(segment.rows_of.items(), key=lambda item: item[1].start)
    for ordinal, (doc_id, _) in enumerate(ordered):
        tags = tuple(name for name, every in SHARES.items() if ordinal % every == 0)
        segment.documents[doc_id] = dataclasses.replace(segment.documents[doc_id], metadata={"tags": tags})


def filter_latency(index: VectorIndex, embedder: Embedder, asked: list[str]) -> dict[str, Any]:
    from benchmarks.common import default_engine

    engine: Engine = default_engine(index, embedder)
    segment = only_segment(index)
    filters = {name: engine.parse_filter({"tags": name}) for name in SHARES}
    started = time.perf_counter()
    shares = {name: float(matching_rows(segment, f).mean()) for name, f in filters.items()}
    table_ms = (time.perf_counter() - started) * 1000
    for question in asked[:3]:  # warm: the model, the caches
        engine.ask(question)
    times: dict[str, list[float]] = {"none": [], **{name: [] for name in filters}}
    searches: dict[str, list[float]] = {name: [] for name in times}
    for question in asked:
        for name in times:
            where = filters.get(name)
            started = time.perf_counter()
            engine.ask(question, where=where)
            times[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            engine.search(question, k=10, where=where)
            searches[name].append((time.perf_counter() - started) * 1000)
    recall = {name: dense_recall(index, embedder, asked[:50], f) for name, f in filters.items()}
    base = summary(times["none"])["p50"]
    search_base = summary(searches["none"])["p50"]
    return {
        "passages": index.n_passages,
        "documents": len(segment.documents),
        "first_filter_table_ms": round(table_ms, 1),
        "rows": [
            {
                "filter": name,
                "share": round(shares.get(name, 1.0), 4),
                **summary(samples),
                "vs_unfiltered": round(summary(samples)["p50"] / base, 3),
                "recall_at_10": recall.get(name, 1.0),
                "search_p50": summary(searches[name])["p50"],
                "search_vs_unfiltered": round(summary(searches[name])["p50"] / search_base, 3),
            }
            for name, samples in times.items()
        ],  # fmt: skip
    }


def dense_recall(index: VectorIndex, embedder: Embedder, asked: list[str], where: Any) -> float:
    """Recall@10 of filtered dense search against brute force over the matching passages."""
    rows = np.flatnonzero(matching_rows(only_segment(index), where) & index.live)
    vectors = np.asarray(index.passage_vectors[rows], dtype=np.float32)
    found = 0
    for query in embedder.embed_queries(asked):
        scores = vectors @ query
        truth = set(rows[np.argsort(-scores, kind="stable")[:10]].tolist())
        found += len(truth & {r for r, _ in dense_search(index, query, 10, where=where)})
    return round(found / (10 * len(asked)), 4)


def collections_memory(
    base: VectorIndex, embedder: Embedder, count: int, size: int, asked: list[str], work: Path
) -> dict[str, Any]:
    import httpx

    from benchmarks.http_load import server
    from qa.collections import Collection, create_collection
    from qa.storage import save_index

    many, one = work / "many", work / "one"
    shutil.rmtree(work, ignore_errors=True)
    small = sub_index(base, size)
    save_index(small, many)
    for i in range(1, count):
        create_collection(many, Collection(f"c{i}"), write_index=lambda folder: save_index(small, folder))
    # One segment of excerpt documents (each row a document holding its passage's text), so its text per
    # passage is what the small collections hold, not whole documents copied per row.
    save_index(synthetic_segments(base, count * size, max(count * size, len(only_segment(base).passages))), one)
    figures: dict[str, Any] = {"collections": count, "passages_each": small.n_passages}
    with server(many, None) as url:
        for question in asked[:5]:  # warm: the model and the first collection
            ask_ms(url, "/v1", question)
        first = [ask_ms(url, "/v1", q) for q in asked]
        for i in range(1, count):
            ask_ms(url, f"/v1/collections/c{i}", asked[0])
        after = [ask_ms(url, "/v1", q) for q in asked]
        figures["many_rss_mb"] = server_rss_mb(url)
        figures["p50_before_ms"], figures["p50_after_ms"] = summary(first)["p50"], summary(after)["p50"]
        passages = httpx.get(url + "/metrics").text.count("qa_index_passages{")
        figures["collections_open"] = passages
    with server(one, None) as url:
        for question in asked:
            ask_ms(url, "/v1", question)
        figures["one_rss_mb"] = server_rss_mb(url)
        figures["one_passages"] = count * size
    figures["ratio"] = round(figures["many_rss_mb"] / figures["one_rss_mb"], 3)
    return figures


def ask_ms(url: str, prefix: str, question: str) -> float:
    import httpx

    started = time.perf_counter()
    response = httpx.post(f"{url}{prefix}/ask", json={"question": question}, timeout=60)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def server_rss_mb(url: str) -> float:
    """The server's resident memory, from its own Prometheus process collector, or /proc by port."""
    import httpx

    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return round(float(line.split()[1]) / 2**20, 1)
    port = url.rsplit(":", 1)[1]
    return _rss_by_port(int(port))


def _rss_by_port(port: int) -> float:
    """Resident memory of the process listening on ``port`` (Linux: /proc/net/tcp inode, then /proc/*/fd)."""
    import os

    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no process listens on port {port}")


def run(opts: Any) -> dict[str, Any]:
    from qa.embedders import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2")
    base, name = base_index(embedder, smoke=opts.smoke)
    asked = questions(opts.questions)
    payload: dict[str, Any] = {"machine": machine(), "base": name, "questions": len(asked)}
    if "filters" in opts.parts:
        log(f"filters: {opts.passages} passages")
        index = synthetic_index(base, opts.passages)
        tag(index)
        payload["filters"] = filter_latency(index, embedder, asked)
    if "collections" in opts.parts:
        log(f"collections: {opts.collections} of {opts.collection_size}")
        payload["collections"] = collections_memory(
            base, embedder, opts.collections, opts.collection_size, asked[:20], CACHE / "collections-bench"
        )
    return payload


def render(payload: dict[str, Any]) -> str:
    out = []
    if "filters" in payload:
        out.append(render_filters(payload["filters"]))
    if "collections" in payload:
        out.append(render_collections(payload["collections"]))
    return "\n\n".join(out)


def render_filters(f: dict[str, Any]) -> str:
    rows = [
        [
            r["filter"],
            f"{r['share']:.0%}",
            r["p50"],
            r["p95"],
            f"{r['vs_unfiltered']:.2f}x",
            r["search_p50"],
            f"{r['search_vs_unfiltered']:.2f}x",
            r["recall_at_10"],
        ]
        for r in f["rows"]
    ]
    title = (
        f"Filtered questions, {f['passages']:,} passages in {f['documents']:,} documents "
        f"(whole answers; first filter table {f['first_filter_table_ms']} ms)"
    )
    headers = ["filter", "matches", "answer p50 ms", "p95 ms", "vs unfiltered", "search p50 ms", "vs unfiltered"]
    return table(title, [*headers, "dense recall@10"], rows)


def render_collections(c: dict[str, Any]) -> str:
    return table(
        f"{c['collections']} collections of {c['passages_each']:,} passages against one of {c['one_passages']:,}",
        ["server", "RSS MB", "p50 ms, first collection"],
        [
            [f"{c['collections']} collections (all opened)", c["many_rss_mb"],
             f"{c['p50_before_ms']} before the others opened, {c['p50_after_ms']} after"],
            [f"1 collection of {c['one_passages']:,}", c["one_rss_mb"], ""],
            ["ratio", f"{c['ratio']:.2f}x", ""],
        ],
    )  # fmt: skip


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--passages", type=int, default=100_000)
    cli.add_argument("--collections", type=int, default=50)
    cli.add_argument("--collection-size", type=int, default=1000)
    cli.add_argument("--questions", type=int, default=200)
    cli.add_argument("--parts", default="filters,collections", help="comma-separated: filters, collections")
    opts = cli.parse_args()
    if opts.smoke:
        opts.passages, opts.collections, opts.collection_size, opts.questions = 2000, 3, 10, 10
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
