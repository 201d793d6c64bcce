"""The index in memory: immutable segments, and the view of one commit over them.

A **segment** holds some documents, their passages, the passages' and units' vectors, a FAISS
index and a lexical index (postings). It never changes once built. A **commit** names the live
segments and, for each, the documents deleted from it since it was written (tombstones).
``VectorIndex`` is one commit's view: rows are numbered across its segments in commit order
(``row = base of its segment + row in the segment``), tombstoned rows included, and search
skips the tombstoned ones. A write adds a segment or a tombstone and makes a new view that
reuses the loaded segments; ``qa.storage`` writes segments and commits to disk, ``qa.build``
makes segments from documents, ``qa.writes`` runs writes and merges.

Lexical statistics are the corpus's, not a segment's: document frequencies, the passage count
and the mean passage length are summed over the live passages of every segment, so BM25 scores
do not depend on how the passages happen to be split into segments.
"""

from __future__ import annotations

import bisect
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from qa.tokens import Vocabulary, strip_accents
from qa.types import Document, Passage

FORMAT_VERSION = 2
# Exact search is fast enough up to here (about 10 ms per query at 384 dimensions on 2 cores);
# above it an HNSW graph answers in about a millisecond with recall@10 near 0.99.
FLAT_MAX_PASSAGES = 200_000
HNSW_M = 32  # neighbours per node: the usual trade-off between memory and recall
# Questions sit farther from passages than passages from each other, so the graph needs a wider
# search than passage-to-passage benchmarks suggest. Recall@10 of real questions against exact
# search (benchmarks/latency.py): with 80 / 128 it was 0.85 on 10.5k real passages and 0.37 at
# 1M; with 200 / 1536 it is 0.99 at 1M for about 7 ms a query on one core (RESULTS.md).
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 1536
# Optional 8-bit scalar quantisation of the FAISS vectors (QA_QUANTIZE_VECTORS): a quarter of their
# memory. The index then only shortlists: this many times the wanted passages are rescored with
# the full vectors (memory-mapped from passage_vectors.npy), so the order returned is exact.
QUANTIZED_TYPES = ("IndexScalarQuantizer", "IndexHNSWSQ")
RESCORE_FACTOR = 4
# A flat index holds nothing but the vectors: it is made from passage_vectors.npy when a segment
# loads, and never written, so each vector is stored once.
FLAT_TYPE = "IndexFlatIP"
# BM25 as bm25s's default ("lucene"): k1, b, and idf = ln(1 + (N - df + 0.5) / (df + 0.5)).
BM25_K1 = 1.5
BM25_B = 0.75

# Below this many changed entries a Layered mapping never folds its changes into its base.
LAYER_MIN = 256

FloatArray = npt.NDArray[np.float32]
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A segment as a commit names it: its directory name and the documents deleted from it."""

    name: str
    deleted: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Manifest:
    """A commit: what the index holds and how it was made.

    Attributes:
        segments: The live segments in order, each with its tombstones.
        generation: Counts commits; the file of commit ``g`` is ``commits/<g>.json``.
    """

    model: str
    dim: int
    settings: dict[str, Any]
    n_documents: int
    n_passages: int
    n_units: int
    segments: tuple[SegmentRef, ...] = ()
    generation: int = 0
    format: int = FORMAT_VERSION
    created: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Postings:
    """A lexical index: for each token, the rows that hold it and how often (CSC layout).

    Attributes:
        vocab: Token to column.
        indptr: Rows of column ``c`` are ``rows[indptr[c]:indptr[c+1]]``.
        rows: Passage rows, ascending within a column.
        tfs: How often the token occurs in that row.
        lengths: Tokens in each row (its BM25 length).
    """

    vocab: dict[str, int]
    indptr: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]
    tfs: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.float32]

    @classmethod
    def of(cls, token_lists: Sequence[Sequence[str]]) -> Postings:
        """Postings of pre-tokenised passages (row ``i`` is ``token_lists[i]``)."""
        counts = [Counter(tokens) for tokens in token_lists]
        vocab = {token: col for col, token in enumerate(sorted({t for c in counts for t in c}))}
        cols = np.fromiter((vocab[t] for c in counts for t in c), dtype=np.int64)
        rows = np.repeat(np.arange(len(counts), dtype=np.int32), [len(c) for c in counts])
        tfs = np.fromiter((n for c in counts for n in c.values()), dtype=np.float32)
        order = np.lexsort((rows, cols))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=len(vocab)))]).astype(np.int64)
        lengths = np.fromiter((len(tokens) for tokens in token_lists), dtype=np.float32, count=len(token_lists))
        return cls(vocab, indptr, rows[order], tfs[order], lengths)

    def column(self, token: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """The rows holding ``token`` and its frequency in each (empty when no row does)."""
        col = self.vocab.get(token)
        if col is None:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        lo, hi = int(self.indptr[col]), int(self.indptr[col + 1])
        return self.rows[lo:hi], self.tfs[lo:hi]

    def frequencies_in(self, rows: npt.NDArray[np.int64]) -> dict[str, int]:
        """How many of ``rows`` hold each token (one scan of the postings: for the rows a delete takes out)."""
        positions = np.flatnonzero(np.isin(self.rows, rows))
        counts = np.bincount(np.searchsorted(self.indptr, positions, side="right") - 1, minlength=len(self.vocab))
        tokens = list(self.vocab)  # in column order
        return {tokens[col]: int(counts[col]) for col in np.flatnonzero(counts)}

    def document_frequencies(self, live: npt.NDArray[np.bool_] | None = None) -> dict[str, int]:
        """How many rows (only ``live`` ones, when given) hold each token; tokens in none are left out."""
        if live is None:
            df = np.diff(self.indptr)
        else:
            held = live[self.rows].astype(np.int64)
            df = np.add.reduceat(held, self.indptr[:-1]) if len(held) else np.zeros(len(self.vocab), np.int64)
            df[np.diff(self.indptr) == 0] = 0
        counts = df.tolist()
        return {token: counts[col] for token, col in self.vocab.items() if counts[col]}


@dataclass(eq=False)
class Segment:
    """An immutable part of the index: documents, passages, vectors, FAISS and lexical indexes.

    Attributes:
        name: Its directory name under ``segments/``; unique, never reused.
        unit_offsets: Units of passage ``i`` are rows ``unit_offsets[i]:unit_offsets[i+1]`` of ``unit_vectors``.
        faiss: The FAISS index type (``IndexFlatIP`` is made from the vectors when first searched).
    """

    name: str
    documents: dict[str, Document]
    passages: list[Passage]
    passage_vectors: FloatArray
    unit_vectors: FloatArray
    unit_offsets: npt.NDArray[np.int64]
    # The FAISS index; None for a flat one not made yet: a flat index is a copy of the vectors, which a
    # build or a merge never searches, so it is made on first use (or by ``searchable`` when served).
    _dense: Any
    postings: Postings
    faiss: str
    path: Path | None = None
    rows_of: dict[str, range] = field(default_factory=dict, repr=False)
    # Reads a stored FAISS index (HNSW) from disk when the segment is first searched: a shard of
    # ``qa serve --ray`` loads every segment of a commit but searches only its own.
    open_dense: Callable[[], Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        starts: dict[str, int] = {}
        for i, p in enumerate(self.passages):
            start = starts.setdefault(p.doc_id, i)
            if self.rows_of.get(p.doc_id, range(start, i)).stop != i:
                raise ValueError(f"segment {self.name}: the passages of {p.doc_id!r} are not consecutive rows")
            self.rows_of[p.doc_id] = range(start, i + 1)

    @property
    def dense(self) -> Any:
        """The FAISS index (a flat one is made from the vectors, a stored one read, now if it was not yet)."""
        if self._dense is None:
            if self.open_dense is not None:
                self._dense = self.open_dense()
            else:
                self._dense = flat_dense(np.asarray(self.passage_vectors, dtype=np.float32))
        return self._dense

    def searchable(self) -> Segment:
        """This segment with its FAISS index made: what a server does before serving it."""
        _ = self.dense
        return self

    @property
    def quantized(self) -> bool:
        """Whether the FAISS vectors are 8-bit (its scores approximate; see RESCORE_FACTOR)."""
        return self.faiss in QUANTIZED_TYPES

    @property
    def n_units(self) -> int:
        return int(self.unit_offsets[-1])

    def deleted_rows(self, deleted: frozenset[str]) -> npt.NDArray[np.int64]:
        """The rows of the deleted documents, ascending."""
        parts = [np.arange(r.start, r.stop) for doc_id in deleted if (r := self.rows_of.get(doc_id))]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


class Layered(Mapping[K, V]):
    """An immutable mapping kept as a shared base plus what changed since: a view updated from the
    previous one costs what the write changed, not what the corpus holds.

    Lookups read the changes, then the base. ``changed`` returns a new mapping and leaves this one as
    it was (a served view never sees a later write). Once the changes reach about the square root of
    the base they are folded into a new base, so an update copies O(sqrt n) entries and the fold's
    O(n) is spread over as many updates.

    Example:
        >>> a = Layered({"x": 1, "y": 2})
        >>> b = a.changed({"z": 3}, ["x"])
        >>> dict(a), dict(b), len(b), "x" in b
        ({'x': 1, 'y': 2}, {'y': 2, 'z': 3}, 2, False)
    """

    __slots__ = ("_base", "_set", "_gone", "_len")

    def __init__(self, base: dict[K, V], set_: dict[K, V] | None = None, gone: frozenset[K] = frozenset()) -> None:
        self._base = base
        self._set = set_ or {}
        self._gone = gone  # keys of the base removed since (never keys of ``_set``)
        self._len = len(base) - len(gone) + sum(1 for k in self._set if k not in base)

    def __getitem__(self, key: K) -> V:
        if key in self._set:
            return self._set[key]
        if key in self._gone:
            raise KeyError(key)
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._set or (key in self._base and key not in self._gone)

    def __iter__(self) -> Iterator[K]:
        skip = self._set.keys() | self._gone if self._set or self._gone else ()
        yield from (k for k in self._base if k not in skip)
        yield from self._set

    def __len__(self) -> int:
        return self._len

    def changed(self, updates: Mapping[K, V], removed: Iterable[K] = ()) -> Layered[K, V]:
        """This mapping with ``removed`` taken out, then ``updates`` set."""
        set_, gone = dict(self._set), set(self._gone)
        for key in removed:
            set_.pop(key, None)
            if key in self._base:
                gone.add(key)
        set_.update(updates)
        gone.difference_update(updates)
        if len(set_) + len(gone) <= max(LAYER_MIN, int(len(self._base) ** 0.5) * 4):
            return Layered(self._base, set_, frozenset(gone))
        base = {k: v for k, v in self._base.items() if k not in gone}
        base.update(set_)
        return Layered(base)


class Rows(Sequence[Passage]):
    """Every row's passage across the segments, read from the segments (no list of them all)."""

    def __init__(self, segments: Sequence[Segment], bases: npt.NDArray[np.int64]) -> None:
        self._segments = segments
        self._bases: list[int] = bases.tolist()

    def __len__(self) -> int:
        return int(self._bases[-1])

    @overload
    def __getitem__(self, row: int) -> Passage: ...
    @overload
    def __getitem__(self, row: slice) -> list[Passage]: ...
    def __getitem__(self, row: int | slice) -> Passage | list[Passage]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        seg = bisect.bisect_right(self._bases, row) - 1
        return self._segments[seg].passages[row - self._bases[seg]]

    def __iter__(self) -> Iterator[Passage]:
        for segment in self._segments:
            yield from segment.passages

    def __eq__(self, other: object) -> bool:
        """Equal to another view's rows, or a list, holding the same passages in the same order."""
        if not isinstance(other, (Rows, list)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal by contents, like a list


class Idf(Mapping[str, float]):
    """BM25 IDF of each token, computed when asked from the live document frequencies."""

    def __init__(self, document_frequency: Mapping[str, int], n: int) -> None:
        self._df, self._n = document_frequency, n

    def of(self, df: int) -> float:
        return math.log(1.0 + (self._n - df + 0.5) / (df + 0.5))

    def __getitem__(self, token: str) -> float:
        return self.of(self._df[token])

    def __contains__(self, token: object) -> bool:
        return token in self._df

    def __iter__(self) -> Iterator[str]:
        return iter(self._df)

    def __len__(self) -> int:
        return len(self._df)


class SegmentVectors:
    """Passage vectors by view row, read from the segments that hold them (no copy of the whole)."""

    def __init__(self, view: VectorIndex) -> None:
        self._view = view
        self.shape = (view.n_rows, view.manifest.dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> FloatArray:
        """Every row's vector in one matrix: a copy of them all (for tests and benchmarks, not for search)."""
        return self[np.arange(self.shape[0])].astype(dtype or np.float32, copy=False)

    def __getitem__(self, rows: Any) -> FloatArray:
        view = self._view
        if isinstance(rows, (int, np.integer)):
            seg, local = view.locate(int(rows))
            return np.asarray(view.segments[seg].passage_vectors[local], dtype=np.float32)
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        which = np.searchsorted(view.bases, rows, side="right") - 1
        for seg in np.unique(which):
            picked = np.flatnonzero(which == seg)
            local = rows[picked] - view.bases[seg]
            order = np.argsort(local, kind="stable")  # forwards through the memory-mapped file
            out[picked[order]] = view.segments[seg].passage_vectors[local[order]]
        return out


class RowsById(Mapping[str, int]):
    """The live passages' rows by passage id, kept as (segment, row in the segment): a merge, which moves
    rows, changes only the entries of the passages it moved, and a view computes the row from its bases."""

    def __init__(self, places: Layered[str, tuple[Segment, int]], base_of: Mapping[str, int]) -> None:
        self.places = places
        self._base_of = base_of

    def __getitem__(self, passage_id: str) -> int:
        segment, local = self.places[passage_id]
        return self._base_of[segment.name] + local

    def __contains__(self, passage_id: object) -> bool:
        return passage_id in self.places

    def __iter__(self) -> Iterator[str]:
        return iter(self.places)

    def __len__(self) -> int:
        return len(self.places)


class VectorIndex:
    """One commit's view over its segments: what the engine reads.

    Attributes:
        manifest: The commit.
        segments: The live segments, in commit order.
        deleted: For each segment, the documents deleted from it.
        bases: Row of each segment's first passage; ``bases[-1]`` is the row count.
        passages: Every row's passage, tombstoned ones included (search never returns those).
        live: Whether each row is live.
        documents: The live documents by id.
        home: The segment holding each live document.
        by_id: The live passages' rows by passage id.
        document_frequency: How many live passages hold each token.
        idf: BM25 IDF of every token of a live passage, over the live passages.
    """

    live: npt.NDArray[np.bool_]
    length: float
    documents: Layered[str, Document]
    home: Layered[str, Segment]
    by_id: RowsById
    document_frequency: Layered[str, int]
    df_histogram: dict[int, int]  # how many tokens have each document frequency
    folded: Layered[str, int]  # how many tokens fold to each accent-free spelling

    def __init__(
        self,
        manifest: Manifest,
        segments: Sequence[Segment],
        path: Path | None = None,
        *,
        previous: VectorIndex | None = None,
    ) -> None:
        refs = {ref.name: ref.deleted for ref in manifest.segments}
        self.manifest = manifest
        self.segments = tuple(segments)
        self.deleted = tuple(refs.get(s.name, frozenset()) for s in self.segments)
        self.path = path
        self.bases = np.concatenate([[0], np.cumsum([len(s.passages) for s in self.segments])]).astype(np.int64)
        self.passages: Sequence[Passage] = Rows(self.segments, self.bases)
        self._base_of: dict[str, int] = dict(zip((s.name for s in self.segments), self.bases.tolist(), strict=False))
        # A write adds segments and tombstones, a merge replaces segments with one: what the previous view
        # derived is updated by the difference instead of derived again over the whole corpus.
        follows = previous is not None and _follows(previous, self)
        self._update(previous if follows else None)
        self.n_passages = int(self.live.sum())
        self.mean_length = self.length / self.n_passages if self.n_passages else 1.0
        self.idf = Idf(self.document_frequency, self.n_passages)
        # The highest IDF is the rarest token's: the least document frequency any token has.
        self.idf_ceiling = self.idf.of(min(self.df_histogram)) if self.df_histogram else 1.0
        self.vocabulary = Vocabulary.over(self.document_frequency, self.folded)
        self.passage_vectors = SegmentVectors(self)
        # The tokens read for the previous view serve this one while rows keep their meaning.
        grows = follows and previous is not None and _grows(previous, self)
        self.token_cache: dict[int, Any] = previous.token_cache if grows and previous is not None else {}

    def _update(self, previous: VectorIndex | None) -> None:
        """Live rows, documents, passage rows and lexical statistics: ``previous``'s, changed by the segments
        that left the commit, those that joined it and the new tombstones of those that stayed; with no
        previous view, over every segment. The work is that of the segments and rows that changed."""
        before = {} if previous is None else {s.name: i for i, s in enumerate(previous.segments)}
        change: Counter[str] = Counter()
        documents: dict[str, Document] = {}
        home: dict[str, Segment] = {}
        places: dict[str, tuple[Segment, int]] = {}
        gone_documents: list[str] = []
        gone_ids: list[str] = []
        self.length = 0.0 if previous is None else previous.length

        def take_out(segment: Segment, rows: npt.NDArray[np.int64], ids: Iterable[str]) -> None:
            assert previous is not None
            held = previous.by_id.places
            gone_ids.extend(p for i in rows.tolist() if held.get(p := segment.passages[i].id) == (segment, i))
            gone_documents.extend(d for d in ids if previous.home.get(d) is segment)
            change.subtract(segment.postings.frequencies_in(rows))
            self.length -= float(segment.postings.lengths[rows].sum())

        if previous is not None:
            now = {s.name for s in self.segments}
            for segment, base in zip(previous.segments, previous.bases.tolist(), strict=False):
                if segment.name not in now:
                    live = previous.live[base : base + len(segment.passages)]
                    take_out(segment, np.flatnonzero(live), segment.documents)
        lives: list[npt.NDArray[np.bool_]] = []
        for segment, deleted in zip(self.segments, self.deleted, strict=True):
            if previous is not None and (seg := before.get(segment.name)) is not None:
                base = int(previous.bases[seg])
                live = previous.live[base : base + len(segment.passages)]
                if newly := deleted - previous.deleted[seg]:
                    rows = segment.deleted_rows(frozenset(newly))
                    take_out(segment, rows, newly)
                    live = live.copy()
                    live[rows] = False
                lives.append(live)
                continue
            gone = segment.deleted_rows(deleted)
            live = np.ones(len(segment.passages), dtype=np.bool_)
            live[gone] = False
            lives.append(live)
            held = [d for d in segment.documents if d not in deleted]
            documents.update((d, segment.documents[d]) for d in held)
            home.update(dict.fromkeys(held, segment))
            places.update((p.id, (segment, i)) for i, p in enumerate(segment.passages) if live[i])
            change.update(segment.postings.document_frequencies(live if len(gone) else None))
            self.length += float(segment.postings.lengths.sum() - segment.postings.lengths[gone].sum())
        self.live = np.concatenate(lives) if lives else np.zeros(0, dtype=np.bool_)
        if previous is None:
            frequency = {token: n for token, n in change.items() if n > 0}
            self.documents = Layered(documents)
            self.home = Layered(home)
            self.by_id = RowsById(Layered(places), self._base_of)
            self.document_frequency = Layered(frequency)
            self.df_histogram = dict(Counter(frequency.values()))
            self.folded = Layered(dict(Counter(strip_accents(token) for token in frequency)))
            return
        self.documents = previous.documents.changed(documents, gone_documents)
        self.home = previous.home.changed(home, gone_documents)
        self.by_id = RowsById(previous.by_id.places.changed(places, gone_ids), self._base_of)
        self._count(previous, change)

    def _count(self, previous: VectorIndex, change: Counter[str]) -> None:
        """The document frequencies, their histogram and the folded vocabulary, ``previous``'s changed by ``change``."""
        frequency: dict[str, int] = {}
        vanished: list[str] = []
        histogram = dict(previous.df_histogram)
        folded: Counter[str] = Counter()
        for token, n in change.items():
            if not n:
                continue
            old = previous.document_frequency.get(token, 0)
            new = old + n
            if old:
                histogram[old] -= 1
                if not histogram[old]:
                    del histogram[old]
            if new > 0:
                frequency[token] = new
                histogram[new] = histogram.get(new, 0) + 1
            else:
                vanished.append(token)
            if not old or new <= 0:
                folded[strip_accents(token)] += 1 if new > 0 else -1
        self.document_frequency = previous.document_frequency.changed(frequency, vanished)
        self.df_histogram = histogram
        counts = {f: previous.folded.get(f, 0) + n for f, n in folded.items() if n}
        self.folded = previous.folded.changed(
            {f: n for f, n in counts.items() if n > 0}, [f for f, n in counts.items() if n <= 0]
        )

    @property
    def n_rows(self) -> int:
        return int(self.bases[-1])

    @property
    def n_units(self) -> int:
        return sum(s.n_units for s in self.segments)

    @property
    def quantized(self) -> bool:
        """Whether any segment's FAISS vectors are 8-bit."""
        return any(s.quantized for s in self.segments)

    def locate(self, row: int) -> tuple[int, int]:
        """The segment holding ``row`` and the row's number inside it."""
        seg = int(np.searchsorted(self.bases, row, side="right")) - 1
        return seg, row - int(self.bases[seg])

    def passage_count(self, document_id: str) -> int:
        """How many passages a live document has (0 for an unknown id)."""
        segment = self.home.get(document_id)
        return 0 if segment is None else len(segment.rows_of[document_id])

    def live_passages(self) -> Iterator[Passage]:
        """The live passages in row order."""
        return (p for p, alive in zip(self.passages, self.live, strict=True) if alive)

    def unit_vectors_of(self, row: int) -> FloatArray:
        """The vectors of passage ``row``'s units."""
        seg, local = self.locate(row)
        segment = self.segments[seg]
        lo, hi = int(segment.unit_offsets[local]), int(segment.unit_offsets[local + 1])
        return np.asarray(segment.unit_vectors[lo:hi], dtype=np.float32)

    def position(self, row: int) -> tuple[str, int, int]:
        """Where a row's passage lies in the corpus: the order ties are broken in, whatever the segments."""
        passage = self.passages[row]
        return passage.doc_id, passage.start, passage.end


def view_of(
    manifest: Manifest, segments: Sequence[Segment], path: Path | None = None, previous: VectorIndex | None = None
) -> VectorIndex:
    """The view of a commit, updated from ``previous`` (by what changed) when it follows from it."""
    return VectorIndex(manifest, segments, path, previous=previous)


def _follows(previous: VectorIndex, view: VectorIndex) -> bool:
    """Whether every segment ``view`` shares by name with ``previous`` is the same one, with at least its tombstones."""
    held = {s.name: (s, gone) for s, gone in zip(previous.segments, previous.deleted, strict=True)}
    return all(
        (old := held.get(s.name)) is None or (old[0] is s and old[1] <= gone)
        for s, gone in zip(view.segments, view.deleted, strict=True)
    )


def _grows(previous: VectorIndex, view: VectorIndex) -> bool:
    """Whether ``view`` holds ``previous``'s segments first, in order, with at least their tombstones."""
    kept = len(previous.segments)
    return (
        len(view.segments) >= kept
        and all(a is b for a, b in zip(previous.segments, view.segments, strict=False))
        and all(old <= new for old, new in zip(previous.deleted, view.deleted, strict=False))
    )


def new_segment_name() -> str:
    """A segment name never used before: time of creation, then random."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def manifest_of(
    model: str, dim: int, settings: dict[str, Any], segments: Sequence[Segment], deleted: Sequence[frozenset[str]]
) -> Manifest:
    """The commit of these segments with these tombstones (counts of live documents, passages, units)."""
    n_documents = n_passages = n_units = 0
    for segment, gone in zip(segments, deleted, strict=True):
        rows = segment.deleted_rows(gone)
        n_documents += len(segment.documents) - len(gone & segment.documents.keys())
        n_passages += len(segment.passages) - len(rows)
        units = np.diff(segment.unit_offsets)
        n_units += int(units.sum() - units[rows].sum())
    refs = tuple(SegmentRef(s.name, frozenset(d)) for s, d in zip(segments, deleted, strict=True))
    return Manifest(model, dim, settings, n_documents, n_passages, n_units, refs)


def unit_offsets_of(passages: Sequence[Passage]) -> npt.NDArray[np.int64]:
    """Row offsets of each passage's units in the unit matrix."""
    return np.concatenate([[0], np.cumsum([len(p.units) for p in passages])]).astype(np.int64)


def dense_type(n: int, *, quantize: bool = False) -> str:
    """The FAISS index type ``make_dense`` makes over ``n`` vectors."""
    if n <= FLAT_MAX_PASSAGES:
        return "IndexScalarQuantizer" if quantize else FLAT_TYPE
    return "IndexHNSWSQ" if quantize else "IndexHNSWFlat"


def make_dense(vectors: FloatArray, *, quantize: bool = False) -> Any:
    """A FAISS index over L2-normalised vectors, chosen by size (see the constants above).

    Inner product equals cosine because the vectors are L2-normalised. With
    ``quantize``, each component is stored in 8 bits (FAISS learns each
    dimension's range from the vectors) instead of 32.
    """
    import faiss

    n, dim = vectors.shape
    dense: Any
    eight_bit = faiss.ScalarQuantizer.QT_8bit
    if n <= FLAT_MAX_PASSAGES:
        dense = (
            faiss.IndexScalarQuantizer(dim, eight_bit, faiss.METRIC_INNER_PRODUCT)
            if quantize
            else faiss.IndexFlatIP(dim)
        )
    else:
        dense = (
            faiss.IndexHNSWSQ(dim, eight_bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]
            if quantize
            else faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        )
        dense.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        dense.hnsw.efSearch = HNSW_EF_SEARCH
    if n:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if not dense.is_trained:
            dense.train(matrix)
        dense.add(matrix)
    return dense


def flat_dense(vectors: FloatArray) -> Any:
    """The exact FAISS index over vectors, made in memory (what a segment of ``FLAT_TYPE`` loads)."""
    import faiss

    dense = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return dense
