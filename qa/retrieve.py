"""Find the passages that may answer a question: dense, lexical, or both fused.

Dense search asks each segment's FAISS index for the nearest passage vectors; lexical
search scores the postings of the question's tokens with BM25 over the corpus's statistics; hybrid fuses
the two rankings with reciprocal rank fusion, which needs no score scaling.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from qa.filters import DocumentTable, Filter
from qa.index import BM25_B, BM25_K1, FLAT_TYPE, HNSW_EF_SEARCH, RESCORE_FACTOR, Postings, Segment, VectorIndex
from qa.tokens import tokenize
from qa.types import Hit

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
# 60 in Cormack, Clarke and Buettcher (2009); ranks here are 0-based, hence 61.
RRF_K = 61
# Each ranking contributes this many candidates to the fusion.
CANDIDATES = 50
# A filter leaving at most this many rows of a graph (HNSW) segment is searched exactly over those rows:
# a graph walk that must skip most nodes can miss matches, and 20,000 dot products take about a millisecond.
EXACT_FILTERED_ROWS = 20_000


Ranking = list[tuple[int, float]]


class Searcher(Protocol):
    """Where the first-stage searches run: here (``LOCAL``), or on shards (``qa.shards.ShardedSearch``).

    ``search`` returns what ``dense_search`` and ``lexical_search`` return over the whole ``index``
    (an empty ranking for a search not asked: no vector, or no tokens), both at once, so that
    shards are asked once per question. ``where`` keeps only the passages of documents it matches.
    """

    def search(
        self,
        index: VectorIndex,
        query: npt.NDArray[np.float32] | None,
        tokens: list[str] | None,
        n: int,
        where: Filter | None = None,
    ) -> tuple[Ranking, Ranking]: ...


class LocalSearch:
    """Every segment searched in this process."""

    def search(
        self,
        index: VectorIndex,
        query: npt.NDArray[np.float32] | None,
        tokens: list[str] | None,
        n: int,
        where: Filter | None = None,
    ) -> tuple[Ranking, Ranking]:
        return search_both(index, query, tokens, n, where=where)


def search_both(
    index: VectorIndex,
    query: npt.NDArray[np.float32] | None,
    tokens: list[str] | None,
    n: int,
    *,
    only: Collection[str] | None = None,
    where: Filter | None = None,
) -> tuple[Ranking, Ranking]:
    """The dense ranking (none without ``query``) and the lexical one (none without ``tokens``)."""
    parts = _parts(index, only, where)
    dense = _dense(index, parts, query, n, filtered=where is not None) if query is not None else []
    lexical = _lexical(index, parts, tokens, n) if tokens is not None else []
    return dense, lexical


LOCAL: Searcher = LocalSearch()


def dense_search(
    index: VectorIndex,
    query: npt.NDArray[np.float32],
    n: int,
    *,
    only: Collection[str] | None = None,
    where: Filter | None = None,
) -> list[tuple[int, float]]:
    """Rows and cosine scores of the ``n`` nearest live passages across the segments, best first.

    Each segment is searched for its ``n`` best live passages (asking past its tombstoned ones);
    the lists are merged by score, ties in corpus order (``VectorIndex.position``), so the result
    does not depend on how the passages are split into segments. An 8-bit segment shortlists
    ``RESCORE_FACTOR * n`` passages, which are then scored with their full vectors: the scores
    returned are exact cosines. ``only`` restricts the search to the segments of those names (a
    shard's): the lists of all shards, merged by ``best``, are the list of the whole index.

    With ``where``, only the passages of matching documents are searched, before ranking: ``n`` come
    back whenever ``n`` match. A flat segment is searched exactly through a FAISS ID selector; a graph
    or 8-bit segment exactly over its matching rows when they are few (``EXACT_FILTERED_ROWS``), else
    through its index with the selector (a shortlist scored with the full vectors), as approximate as
    that index is without a filter.
    """
    return _dense(index, _parts(index, only, where), query, n, filtered=where is not None)


Part = tuple[int, Segment, npt.NDArray[np.bool_]]


def _dense(
    index: VectorIndex, parts: list[Part], query: npt.NDArray[np.float32], n: int, *, filtered: bool
) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []
    for base, segment, allowed in parts:
        size = len(segment.passages)
        count = int(allowed.sum())
        if not count or n <= 0:
            continue
        if filtered:
            pairs = _dense_filtered(segment, query, allowed, count, n)
        elif not segment.quantized:
            want = min(n + size - count, size)
            scores, rows = segment.dense.search(query.reshape(1, -1), want)
            pairs = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0 and allowed[r]]
        else:
            want = min(n + size - count, size)
            _, shortlist = segment.dense.search(query.reshape(1, -1), min(want * RESCORE_FACTOR, size))
            rows = np.sort(shortlist[0][shortlist[0] >= 0])  # in file order: the memory-mapped reads go forwards
            pairs = _exact(segment, query, rows[allowed[rows]])
        found.extend((base + r, s) for r, s in pairs[:n])
    return best(index, found, n)


def _exact(segment: Segment, query: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> list[tuple[int, float]]:
    """``rows`` scored with their full vectors, best first (ties in row order)."""
    exact = np.asarray(segment.passage_vectors[rows] @ query, dtype=np.float32)
    return [(int(rows[i]), float(exact[i])) for i in np.argsort(-exact, kind="stable")]


def _dense_filtered(
    segment: Segment, query: npt.NDArray[np.float32], allowed: npt.NDArray[np.bool_], count: int, n: int
) -> list[tuple[int, float]]:
    """The ``n`` best of a segment's ``allowed`` rows (see ``dense_search``)."""
    import faiss

    lib: Any = faiss  # its stubs lack the search parameters' keyword arguments
    if segment.faiss != FLAT_TYPE and count <= EXACT_FILTERED_ROWS:
        return _exact(segment, query, np.flatnonzero(allowed))[:n]
    bits = np.packbits(allowed, bitorder="little")  # the selector reads it: kept alive through the search
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    if segment.faiss == FLAT_TYPE:
        scores, rows = segment.dense.search(
            query.reshape(1, -1), min(n, count), params=lib.SearchParameters(sel=selector)
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    want = min(n * RESCORE_FACTOR, count)  # a graph or 8-bit segment shortlists, then scores exactly
    graph = segment.faiss.startswith("IndexHNSW")
    params = (
        lib.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, want))
        if graph
        else lib.SearchParameters(sel=selector)
    )
    _, shortlist = segment.dense.search(query.reshape(1, -1), want, params=params)
    return _exact(segment, query, np.sort(shortlist[0][shortlist[0] >= 0]))[:n]


def lexical_search(
    index: VectorIndex,
    tokens: list[str],
    n: int,
    *,
    only: Collection[str] | None = None,
    where: Filter | None = None,
) -> list[tuple[int, float]]:
    """Rows and BM25 scores of the ``n`` best live passages with any query token, best first.

    BM25 as bm25s scores it ("lucene"), with the corpus's statistics: document frequencies, passage
    count and mean length over every segment's live passages, also when ``only`` restricts the
    search to some segments or ``where`` to some documents. Ties are broken in corpus order.
    """
    return _lexical(index, _parts(index, only, where), tokens, n)


def _lexical(index: VectorIndex, parts: list[Part], tokens: list[str], n: int) -> list[tuple[int, float]]:
    known = [t for t in tokens if t in index.idf]
    if not known or not index.n_passages or n <= 0:
        return []
    idf = np.asarray([index.idf[t] for t in known], dtype=np.float32)
    found: list[tuple[int, float]] = []
    for base, segment, allowed in parts:
        scores = bm25_scores(segment.postings, known, idf, np.float32(index.mean_length))
        hits = rows_with_any(segment.postings, known)
        hits = hits[allowed[hits] & (scores[hits] != 0)]
        if len(hits) > n:  # the n best, and any tied with the n-th: corpus order settles those
            floor = np.partition(scores[hits], len(hits) - n)[len(hits) - n]
            hits = hits[scores[hits] >= floor]
        found.extend((int(base + r), float(scores[r])) for r in hits)
    return best(index, found, n)


def rows_with_any(postings: Postings, tokens: list[str]) -> npt.NDArray[np.int64]:
    """The rows holding any of the tokens, ascending: the only rows BM25 can score. Marked in a boolean per
    row, whose scan costs a quarter of a scan of the scores for non-zeros (1.7 ms less at a million rows)."""
    marked = np.zeros(len(postings.lengths), dtype=bool)
    for token in tokens:
        marked[postings.column(token)[0]] = True
    return np.flatnonzero(marked)


def bm25_scores(
    postings: Postings, tokens: list[str], idf: npt.NDArray[np.float32], mean_length: np.float32
) -> npt.NDArray[np.float32]:
    """BM25 of every row of one segment for the tokens (repeats count again), with the given IDF and mean length."""
    scores = np.zeros(len(postings.lengths), dtype=np.float32)
    k1, b = np.float32(BM25_K1), np.float32(BM25_B)
    for token, weight in zip(tokens, idf, strict=True):
        rows, tfs = postings.column(token)
        if len(rows):
            norm = k1 * ((np.float32(1) - b) + b * postings.lengths[rows] / mean_length)
            scores[rows] += weight * (tfs / (norm + tfs))
    return scores


def _parts(index: VectorIndex, only: Collection[str] | None, where: Filter | None = None) -> list[Part]:
    """Each segment (of those named ``only``) with its first row and which of its rows may be returned:
    the live ones, of documents ``where`` matches."""
    parts = [
        (int(base), segment, index.live[base : base + len(segment.passages)])
        for base, segment in zip(index.bases, index.segments, strict=False)
        if only is None or segment.name in only
    ]
    if where is None:
        return parts
    return [(base, segment, live & matching_rows(segment, where)) for base, segment, live in parts]


# Each segment's documents as a filter table, and how many rows each has (in row order): made once per
# segment, which never changes, on its first filtered search.
_TABLES: weakref.WeakKeyDictionary[Segment, tuple[DocumentTable, npt.NDArray[np.int64]]] = weakref.WeakKeyDictionary()


def matching_rows(segment: Segment, where: Filter) -> npt.NDArray[np.bool_]:
    """Which rows of a segment belong to documents ``where`` matches."""
    made = _TABLES.get(segment)
    if made is None:
        ordered = sorted(segment.rows_of.items(), key=lambda item: item[1].start)
        table = DocumentTable((doc_id, segment.documents[doc_id].metadata) for doc_id, _ in ordered)
        made = _TABLES[segment] = (table, np.asarray([len(rows) for _, rows in ordered], dtype=np.int64))
    table, counts = made
    return np.repeat(table.select(where), counts)


def best(index: VectorIndex, found: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    """The ``n`` best (row, score) pairs: highest score first, ties in corpus order."""
    return sorted(found, key=lambda item: (-item[1], index.position(item[0])))[:n]


def fuse_rrf(*rankings: list[tuple[int, float]], order: Callable[[int], Any] = int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each item scores the sum of 1 / (RRF_K + rank) over the rankings.

    Ties go in ``order`` of the items (``VectorIndex.position`` in ``retrieve``).

    Example:
        >>> [row for row, _ in fuse_rrf([(1, 0.9), (2, 0.8)], [(2, 7.0), (3, 1.0)])]
        [2, 1, 3]
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (row, _) in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], order(item[0])))


def retrieve(
    index: VectorIndex,
    query_vector: npt.NDArray[np.float32] | None,
    question: str,
    *,
    k: int = 10,
    mode: Mode = "hybrid",
    searcher: Searcher = LOCAL,
    where: Filter | None = None,
) -> list[Hit]:
    """The ``k`` best passages for a question.

    Args:
        index: A loaded index.
        query_vector: The question's embedding (unused, and may be None, in ``bm25`` mode).
        question: The question text, for lexical search.
        k: How many passages to return.
        mode: ``hybrid`` (RRF of both), ``dense`` or ``bm25``.
        searcher: Where the dense and lexical searches run.
        where: Only passages of the documents this filter matches (``qa.filters``).

    Returns:
        Hits best first, each with its fused score and both component scores.
    """
    query = query_vector if mode != "bm25" else None
    tokens = tokenize(question) if mode != "dense" else None
    dense, lexical = searcher.search(index, query, tokens, max(k, CANDIDATES), where)
    if mode == "hybrid":
        ranking = fuse_rrf(dense, lexical, order=index.position)
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
