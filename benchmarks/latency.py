"""Query latency by stage (embed, dense, lexical, fusion, extraction, reread, total) from 1k to 1M passages.

Rows: the default corpus and the first 1k and 10k passages of the US Code
titles (real text and vectors), then 100k and 1M synthetic rows grown from
them (``benchmarks/corpora.py`` says how). Each question is asked once per
stage function of ``qa.retrieve`` / ``qa.features`` and ``qa.scorer`` and once whole through
``Engine.ask_detailed`` ("total", the query cache cleared so the model runs), with the
server's default settings (``QA_*``): "reread" is the cross-encoder reading the best
candidates and the reranker ordering them again (``Engine.reread_best``), for the questions
whose first answer is less sure than ``QA_READER_BELOW`` (0 ms for the others), beside
the same for every question ("reread all", the baseline of ``QA_READER_BELOW``) and for
every question on one core ("reread all 1 core": the candidates read one after another,
the baseline of ``QA_READER_THREADS``).

Baselines in the same run: exact search over the same vectors next to the
FAISS index the engine uses, and, where that index is HNSW (or ``--hnsw-at``
asks for one), its recall@10 against exact search for several ``efSearch``.

    python -m benchmarks.latency                       # 1k, 10k, 100k, 1M
    python -m benchmarks.latency --sizes 1000,10000 --json
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import GOLD, XQUAD, emit, log, machine, parser, rss_mb, summary, table, timed
from benchmarks.corpora import only_segment
from qa.config import Settings
from qa.embed import Embedder
from qa.engine import RETRIEVE_PASSAGES, Engine, engine_of
from qa.features import candidate_features
from qa.index import VectorIndex, make_dense
from qa.question import profile
from qa.retrieve import CANDIDATES, bm25_scores, dense_search, fuse_rrf, lexical_search, retrieve
from qa.scorer import load_model
from qa.selection import rank
from qa.tokens import tokenize

STAGES = ("embed", "dense", "lexical", "fusion", "extraction", "reread", "reread all", "reread all 1 core", "total")
EF_SEARCH_SWEEP = (256, 512, 1024, 1536, 2048)
# Rows per matrix product in exact search: 200k x 384 floats is 300 MB.
EXACT_CHUNK = 200_000
USCODE_QUESTIONS = [
    "Who may be admitted as a nonimmigrant student?",
    "What is the penalty for bringing in and harboring certain aliens?",
    "When does an alien become deportable for a criminal offense?",
    "What are the duties of the Secretary of Homeland Security for border security?",
    "How long is the period of continuous residence required for naturalization?",
]


def questions(limit: int) -> list[str]:
    """A fixed mix: the project's gold questions, XQuAD questions and US Code questions."""
    from qa.gold import load_jsonl, load_squad

    pool = [item.question for item in load_jsonl(GOLD)] + USCODE_QUESTIONS
    if XQUAD.is_file():
        xquad = [item.question for item in load_squad(XQUAD)[1]]
        pool += xquad[:: max(1, len(xquad) // 300)]
    rng = np.random.default_rng(7)
    return [pool[i] for i in rng.permutation(len(pool))[:limit]]


def dense_bytes(dense: Any) -> int:
    """Memory the FAISS index holds: its stored codes (4 bytes a component, 1 for 8-bit), plus an HNSW graph."""
    import faiss

    storage = faiss.downcast_index(dense.storage) if hasattr(dense, "storage") else dense
    total = int(dense.ntotal) * int(storage.sa_code_size())
    if hasattr(dense, "hnsw"):
        graph = dense.hnsw
        total += graph.neighbors.size() * 4 + graph.offsets.size() * 8 + graph.levels.size() * 4
    return total


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-k rows, best first, in chunks so a memory-mapped matrix stays on disk."""
    scores_seen, rows_seen = [], []
    for lo in range(0, len(vectors), EXACT_CHUNK):
        scores = queries @ np.asarray(vectors[lo : lo + EXACT_CHUNK]).T
        kk = min(k, scores.shape[1])
        rows = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        scores_seen.append(np.take_along_axis(scores, rows, axis=1))
        rows_seen.append(rows + lo)
    scores, rows = np.hstack(scores_seen), np.hstack(rows_seen)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(rows, order, axis=1)


def recall_at_10(dense: Any, queries: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top 10 found in the first 10 of the engine's top-CANDIDATES request."""
    _, found = dense.search(queries, CANDIDATES)
    return float(np.mean([len(set(f[:10]) & set(t[:10])) / 10 for f, t in zip(found, truth, strict=True)]))


def lexical_search_of(index: VectorIndex, question: str) -> list[tuple[int, float]]:
    """The lexical stage as ``retrieve`` runs it: tokenize, then BM25."""
    return lexical_search(index, tokenize(question), CANDIDATES)


def extract(index: VectorIndex, hits: list[Any], question: str, vector: np.ndarray) -> Any:
    """The extraction stage as ``Engine.ask_detailed`` runs it: profile the question, describe and score
    every candidate, rank them."""
    asked = profile(question, index.idf, index.idf_ceiling, index.vocabulary)
    found, matrix = candidate_features(index, hits, asked, vector)
    return rank(found, matrix, load_model(index.manifest.model))


def stage_times(
    engine: Engine, every: Engine, serial: Engine, asked: list[str], warmup: int
) -> tuple[dict[str, list[float]], float]:
    """Milliseconds per stage per question (cache cleared before each model call), and the share of the
    questions ``engine`` reread; ``every`` is ``engine`` rereading every question, ``serial`` the same with
    its cross-encoder on one core."""
    index, embedder = engine.index, engine.embedder
    clear = getattr(embedder, "clear_cache", lambda: None)
    for question in asked[:warmup]:
        engine.ask(question)
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    reread: list[bool] = []
    for question in asked:
        clear()
        vector, ms = timed(embedder.embed_queries, [question])
        times["embed"].append(ms)
        dense, ms = timed(dense_search, index, vector[0], CANDIDATES)
        times["dense"].append(ms)
        lexical, ms = timed(lexical_search_of, index, question)
        times["lexical"].append(ms)
        times["fusion"].append(timed(fuse_rrf, dense, lexical, order=index.position)[1])
        hits = retrieve(index, vector[0], question, k=RETRIEVE_PASSAGES)
        ranked, ms = timed(extract, index, hits, question, vector[0])
        times["extraction"].append(ms)
        # Alternate which reread goes first: the first call after extraction wakes the reader's threads.
        for which in (engine, every) if len(times["reread"]) % 2 == 0 else (every, engine):
            (_, model), ms = timed(which.reread_best, question, ranked)
            times["reread" if which is engine else "reread all"].append(ms)
            if which is engine:
                reread.append(model is engine.reranker)
        times["reread all 1 core"].append(timed(serial.reread_best, question, ranked)[1])
        clear()
        times["total"].append(timed(engine.ask_detailed, question)[1])
    return times, sum(reread) / max(1, len(reread))


def dense_baselines(index: VectorIndex, embedder: Embedder, asked: list[str], hnsw: bool) -> dict[str, Any]:
    """Exact search latency and, for HNSW, recall@10 and latency for each efSearch."""
    segment = only_segment(index)
    vectors = np.asarray(segment.passage_vectors) if len(segment.passages) < 300_000 else segment.passage_vectors
    queries = embedder.embed_queries(asked)
    truth = exact_top(vectors, queries, 10)
    exact_ms = [timed(exact_top, vectors, q[None, :], CANDIDATES)[1] for q in queries[:50]]
    out: dict[str, Any] = {"exact_ms": summary(exact_ms), "dense_mb": round(dense_bytes(segment.dense) / (1 << 20), 1)}
    dense = segment.dense
    if hnsw and not hasattr(dense, "hnsw"):
        import qa.index as constants

        saved, constants.FLAT_MAX_PASSAGES = constants.FLAT_MAX_PASSAGES, 0
        dense = make_dense(np.ascontiguousarray(vectors))
        constants.FLAT_MAX_PASSAGES = saved
        out["hnsw_mb"] = round(dense_bytes(dense) / (1 << 20), 1)
    if hasattr(dense, "hnsw"):
        chosen = dense.hnsw.efSearch
        sweep = {}
        for ef in EF_SEARCH_SWEEP:
            dense.hnsw.efSearch = ef
            ms = [timed(dense.search, q[None, :], CANDIDATES)[1] for q in queries]
            sweep[ef] = {"recall@10": round(recall_at_10(dense, queries, truth), 4), **summary(ms)}
        dense.hnsw.efSearch = chosen
        out["hnsw"] = {"efSearch": chosen, "sweep": sweep}
    return out


def measure(name: str, index: VectorIndex, embedder: Embedder, asked: list[str], hnsw: bool) -> dict[str, Any]:
    """Every figure for one index size."""
    log(f"{name}: timing {len(asked)} questions")
    settings = Settings()
    every = engine_of(index, embedder, settings.model_copy(update={"reader_below": 1.0}))
    serial = engine_of(index, embedder, settings.model_copy(update={"reader_below": 1.0, "reader_threads": 1}))
    engine = engine_of(index, embedder, settings)
    times, share = stage_times(engine, every, serial, asked, warmup=min(10, len(asked)))
    return {
        "name": name,
        "passages": index.n_passages,
        "faiss": only_segment(index).faiss,
        "stages": {stage: summary(ms) for stage, ms in times.items()},
        # The share of questions the cross-encoder reread (QA_READER_BELOW).
        "reread_share": round(share, 3),
        "rss_mb": round(rss_mb(), 1),
        "scans": corpus_sized_work(index, asked),
        **dense_baselines(index, embedder, asked, hnsw),
    }


def corpus_sized_work(index: VectorIndex, asked: list[str]) -> dict[str, Any]:
    """Work that grows with the corpus: BM25 scoring of every passage, per query, and the IDF ceiling.

    ``lexical_search`` scores the postings of the question's tokens, then selects its top 50. The
    highest IDF (a Python loop over the vocabulary) is taken once when a commit loads
    (``VectorIndex.idf_ceiling``); it is timed here to show what a per-query scan of the vocabulary
    would cost.
    """
    known = [[t for t in tokenize(q) if t in index.idf] for q in asked]
    segment = only_segment(index)
    weights = [np.asarray([index.idf[t] for t in tokens], dtype=np.float32) for tokens in known]
    mean = np.float32(index.mean_length)
    scoring = [timed(bm25_scores, segment.postings, t, w, mean)[1] for t, w in zip(known, weights, strict=True) if t]
    ceiling = [timed(max, index.idf.values())[1] for _ in range(20)]
    return {"vocabulary": len(index.idf), "bm25_get_scores_ms": summary(scoring), "idf_max_ms": summary(ceiling)}


def render(payload: dict[str, Any]) -> str:
    stages = list(payload["rows"][0]["stages"])  # a payload written before a stage was added has fewer
    shares = ["reread share"] if all("reread_share" in r for r in payload["rows"]) else []
    rows = [
        [r["name"], r["passages"], r["faiss"]]
        + [f"{r['stages'][s]['p50']:.2f} / {r['stages'][s]['p99']:.2f}" for s in stages]
        + [f"{r['reread_share']:.2f}" for _ in shares]
        for r in payload["rows"]
    ]
    out = table(
        f"Query latency by stage, ms p50 / p99 ({payload['embedder']}, {payload['questions']} questions)",
        ["index", "passages", "faiss", *stages, *shares],
        rows,
    )
    dense_rows = [
        [r["name"], r["dense_mb"], r.get("hnsw_mb", "-"), r["exact_ms"]["p50"], r["stages"]["dense"]["p50"]]
        for r in payload["rows"]
    ]
    out += "\n" + table(
        "Dense index: memory and exact search baseline",
        ["index", "FAISS MB", "HNSW MB", "exact p50 ms", "engine dense p50 ms"],
        dense_rows,
    )
    scan_rows = [
        [
            r["name"],
            r["scans"]["vocabulary"],
            r["stages"]["lexical"]["p50"],
            r["scans"]["bm25_get_scores_ms"]["p50"],
            r["scans"]["idf_max_ms"]["p50"],
            r["stages"]["extraction"]["p50"],
        ]
        for r in payload["rows"]
    ]
    out += "\n" + table(
        "Work that grows with the corpus, ms p50 (the highest IDF is taken once per index)",
        ["index", "vocabulary", "lexical stage", "of which bm25 get_scores", "max(idf), at load", "extraction stage"],
        scan_rows,
    )
    recall_rows = [
        [r["name"], ef, s["recall@10"], s["p50"], s["p99"], "yes" if int(ef) == r["hnsw"]["efSearch"] else ""]
        for r in payload["rows"]
        if "hnsw" in r
        for ef, s in r["hnsw"]["sweep"].items()
    ]
    if recall_rows:
        out += "\n" + table(
            "HNSW recall@10 against exact search (real query embeddings)",
            ["index", "efSearch", "recall@10", "p50 ms", "p99 ms", "default"],
            recall_rows,
        )
    return out


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--sizes", default="1000,10000,100000,1000000", help="passage counts, comma-separated")
    args.add_argument("--questions", type=int, default=200, help="questions timed per size")
    args.add_argument("--model", default=None, help="embedding model setting [default: all-MiniLM-L6-v2]")
    args.add_argument("--threads", type=int, default=1, help="model threads (see benchmarks/embed.py)")
    args.add_argument("--faiss-threads", type=int, default=1, help="FAISS OpenMP threads (2 stalls under load)")
    args.add_argument("--hnsw-at", default="100000", help="sizes below the flat limit where HNSW is measured too")
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


def run(opts: Any) -> dict[str, Any]:
    import faiss

    from benchmarks.common import offline
    from benchmarks.corpora import base_index, sub_index, synthetic_index
    from qa.defaults import DEFAULT_MODEL
    from qa.embed import HashEmbedder
    from qa.embedders import load_embedder

    offline()
    faiss.omp_set_num_threads(1 if opts.smoke else opts.faiss_threads)
    sizes = [2000] if opts.smoke else [int(s) for s in opts.sizes.split(",") if s]
    hnsw_at = {2000} if opts.smoke else {int(s) for s in opts.hnsw_at.split(",") if s}
    embedder = HashEmbedder(dim=384) if opts.smoke else load_embedder(opts.model or DEFAULT_MODEL, threads=opts.threads)
    asked = questions(12 if opts.smoke else opts.questions)
    base, base_name = base_index(embedder, smoke=opts.smoke)
    rows = [measure(f"{base_name} (all, real)", base, embedder, asked, False)]
    for n in sizes:
        real = n <= len(base.passages)
        index = sub_index(base, n) if real else synthetic_index(base, n)
        rows.append(measure(f"{n:,} ({'real' if real else 'synthetic'})", index, embedder, asked, n in hnsw_at))
        del index
    threads = {"model": opts.threads, "faiss": 1 if opts.smoke else opts.faiss_threads}
    return {"machine": machine(), "embedder": embedder.name, "threads": threads, "questions": len(asked), "rows": rows}


if __name__ == "__main__":
    main()
