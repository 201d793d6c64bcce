"""Find the passages that may answer a question: dense, lexical, or both fused.

Dense search asks FAISS for the nearest passage vectors; lexical search scores
every passage with BM25 in one sparse matrix product (bm25s); hybrid fuses
the two rankings with reciprocal rank fusion, which needs no score scaling.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from qa.index import RESCORE_FACTOR, VectorIndex
from qa.tokens import tokenize
from qa.types import Hit

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
# 60 in Cormack, Clarke and Buettcher (2009); ranks here are 0-based, hence 61.
RRF_K = 61
# Each ranking contributes this many candidates to the fusion.
CANDIDATES = 50


def dense_search(index: VectorIndex, query: npt.NDArray[np.float32], n: int) -> list[tuple[int, float]]:
    """Row numbers and cosine scores of the ``n`` nearest passages, best first.

    An 8-bit index shortlists ``RESCORE_FACTOR * n`` passages, which are then
    scored with their full vectors: the scores returned are exact cosines.
    """
    n = min(n, len(index.passages))
    if n == 0:
        return []
    if not index.quantized:
        scores, rows = index.dense.search(query.reshape(1, -1), n)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    _, found = index.dense.search(query.reshape(1, -1), min(n * RESCORE_FACTOR, len(index.passages)))
    rows = np.sort(found[0][found[0] >= 0])  # in file order: the memory-mapped reads go forwards
    exact = np.asarray(index.passage_vectors[rows] @ query, dtype=np.float32)
    best = np.argsort(-exact, kind="stable")[:n]
    return [(int(rows[i]), float(exact[i])) for i in best]


def lexical_search(index: VectorIndex, tokens: list[str], n: int) -> list[tuple[int, float]]:
    """Row numbers and BM25 scores of the ``n`` best passages with any query token, best first."""
    known = [t for t in tokens if t in index.idf]
    if not known or not index.passages:
        return []
    scores = np.asarray(index.lexical.get_scores(known), dtype=np.float32)
    n = min(n, int(np.count_nonzero(scores)))
    if n == 0:
        return []
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(r), float(scores[r])) for r in top]


def fuse_rrf(*rankings: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each item scores the sum of 1 / (RRF_K + rank) over the rankings.

    Example:
        >>> [row for row, _ in fuse_rrf([(1, 0.9), (2, 0.8)], [(2, 7.0), (3, 1.0)])]
        [2, 1, 3]
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (row, _) in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def retrieve(
    index: VectorIndex,
    query_vector: npt.NDArray[np.float32] | None,
    question: str,
    *,
    k: int = 10,
    mode: Mode = "hybrid",
) -> list[Hit]:
    """The ``k`` best passages for a question.

    Args:
        index: A loaded index.
        query_vector: The question's embedding (unused, and may be None, in ``bm25`` mode).
        question: The question text, for lexical search.
        k: How many passages to return.
        mode: ``hybrid`` (RRF of both), ``dense`` or ``bm25``.

    Returns:
        Hits best first, each with its fused score and both component scores.
    """
    dense = dense_search(index, query_vector, max(k, CANDIDATES)) if mode != "bm25" and query_vector is not None else []
    lexical = lexical_search(index, tokenize(question), max(k, CANDIDATES)) if mode != "dense" else []
    if mode == "hybrid":
        ranking = fuse_rrf(dense, lexical)
    else:
        ranking = dense if mode == "dense" else lexical
    lexical_of = dict(lexical)
    top = ranking[:k]
    cosines = (
        index.passage_vectors[[row for row, _ in top]] @ query_vector
        if query_vector is not None and top
        else np.zeros(len(top), dtype=np.float32)
    )
    return [
        Hit(index.passages[row], score, rank, float(cosine), lexical_of.get(row, 0.0))
        for rank, ((row, score), cosine) in enumerate(zip(top, cosines, strict=True))
    ]
