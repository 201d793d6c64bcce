"""8-bit vectors (``QA_QUANTIZE_VECTORS``) against full vectors: memory, recall@10 and dense search time.

At each size the same vectors go into the FAISS index the engine would build
(flat up to ``FLAT_MAX_PASSAGES``, HNSW above; ``--hnsw-at`` adds HNSW below)
twice, once with float32 and once with 8-bit components, and the same real
question embeddings are searched in both. Recall@10 is the share of the exact
top 10 (numpy over the full vectors) found in ``qa.retrieve.dense_search``'s
first 10, which for 8-bit indexes rescores a shortlist of ``RESCORE_FACTOR``
times the wanted passages with the full vectors; "raw" is the 8-bit index's own
first 10, without that rescoring. Rows are the synthetic ones of
``benchmarks/corpora.py``; built indexes are cached as the latency run's are.

    python -m benchmarks.quantized                          # 100k (flat and HNSW) and 1M (HNSW)
    python -m benchmarks.quantized --sizes 100000 --json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import emit, log, machine, parser, summary, table, timed
from benchmarks.corpora import only_segment, single_segment_index
from benchmarks.latency import dense_bytes, exact_top, questions
from qa.index import RESCORE_FACTOR, VectorIndex, make_dense
from qa.retrieve import CANDIDATES, dense_search


def built(vectors: np.ndarray, *, quantize: bool, hnsw: bool, folder: Path | None) -> Any:
    """``make_dense`` over the vectors (HNSW forced with ``hnsw``), read back from ``folder`` when cached there."""
    import faiss

    import qa.index as constants

    graph = f"hnsw{constants.HNSW_M}-{constants.HNSW_EF_CONSTRUCTION}" if hnsw else "flat"
    kind = ("sq8-" if quantize else "") + graph
    path = folder / f"dense-{kind}.faiss" if folder else None
    if path is not None and path.is_file():
        dense = faiss.read_index(str(path))
    else:
        log(f"building the {kind} index over {len(vectors)} vectors")
        saved = constants.FLAT_MAX_PASSAGES
        constants.FLAT_MAX_PASSAGES = 0 if hnsw else max(saved, len(vectors))
        try:
            dense = make_dense(np.ascontiguousarray(vectors), quantize=quantize)
        finally:
            constants.FLAT_MAX_PASSAGES = saved
        if path is not None:
            faiss.write_index(dense, str(path.with_suffix(".tmp")))
            path.with_suffix(".tmp").rename(path)
    if hasattr(dense, "hnsw"):
        dense.hnsw.efSearch = constants.HNSW_EF_SEARCH
    return dense


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    """Mean share of each exact top 10 found in the first 10 returned."""
    return round(float(np.mean([len(set(f[:10]) & set(t[:10])) / 10 for f, t in zip(found, truth, strict=True)])), 4)


def compare(index: VectorIndex, queries: np.ndarray, hnsw: bool, folder: Path | None) -> list[dict[str, Any]]:
    """Float and 8-bit indexes of ``index``'s vectors: memory, recall@10 (rescored and raw), dense search time."""
    segment = only_segment(index)
    vectors = np.asarray(segment.passage_vectors)
    truth = exact_top(vectors, queries, 10)
    rows = []
    for quantize in (False, True):
        dense = built(vectors, quantize=quantize, hnsw=hnsw, folder=folder)
        name = type(dense).__name__
        engine_index = single_segment_index(
            index, segment.passages, segment.passage_vectors, segment.unit_vectors, [], dense
        )
        found, ms = [], []
        for query in queries:
            result, took = timed(dense_search, engine_index, query, CANDIDATES)
            found.append([row for row, _ in result[:10]])
            ms.append(took)
        _, raw = dense.search(queries, 10)
        rows.append({
            "passages": len(vectors),
            "faiss": name,
            "mb": round(dense_bytes(dense) / (1 << 20), 3),
            "recall@10": recall(found, truth),
            "raw_recall@10": recall(raw.tolist(), truth),
            "dense_ms": summary(ms),
        })  # fmt: skip
    return rows


def run(opts: Any) -> dict[str, Any]:
    import faiss

    from benchmarks.common import offline
    from benchmarks.corpora import base_index, synthetic_index
    from qa.embed import HashEmbedder
    from qa.embedders import load_embedder

    offline()
    faiss.omp_set_num_threads(1)
    embedder = HashEmbedder(dim=384) if opts.smoke else load_embedder(opts.model, threads=1)
    base, _ = base_index(embedder, smoke=opts.smoke)
    queries = embedder.embed_queries(questions(12 if opts.smoke else opts.questions))
    sizes = [base.n_passages] if opts.smoke else [int(s) for s in opts.sizes.split(",") if s]
    hnsw_at = {int(s) for s in opts.hnsw_at.split(",") if s}
    rows: list[dict[str, Any]] = []
    for n in sizes:
        index = base if opts.smoke else synthetic_index(base, n)
        folder = None if opts.smoke else Path(str(getattr(only_segment(index).passage_vectors, "filename", ""))).parent
        import qa.index as constants

        kinds = ([False] if n <= constants.FLAT_MAX_PASSAGES else []) + (
            [True] if n > constants.FLAT_MAX_PASSAGES or n in hnsw_at or opts.smoke else []
        )
        for hnsw in kinds:
            rows += compare(index, queries, hnsw, folder)
        del index
    return {"machine": machine(), "embedder": embedder.name, "rescore_factor": RESCORE_FACTOR, "rows": rows}


def render(payload: dict[str, Any]) -> str:
    rows = [
        [f"{r['passages']:,}", r["faiss"], r["mb"], r["raw_recall@10"], r["recall@10"],
         f"{r['dense_ms']['p50']:.2f} / {r['dense_ms']['p99']:.2f}"]
        for r in payload["rows"]
    ]  # fmt: skip
    title = (
        f"Float32 against 8-bit vectors ({payload['embedder']}, shortlist rescored: "
        f"{payload['rescore_factor']}x the passages wanted)"
    )
    headers = ["passages", "faiss", "index MB", "recall@10 raw", "recall@10 engine", "dense ms p50 / p99"]
    return table(title, headers, rows)


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--sizes", default="100000,1000000", help="passage counts, comma-separated")
    args.add_argument("--hnsw-at", default="100000", help="sizes under the flat limit measured with HNSW too")
    args.add_argument("--questions", type=int, default=200, help="questions searched per index")
    args.add_argument("--model", default="all-MiniLM-L6-v2-int8", help="model whose cached base index is used")
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
