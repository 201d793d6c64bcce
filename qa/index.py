"""The index in memory: passages, their vectors, a FAISS index and a lexical index.

``qa.storage`` writes it to disk and reads it back; ``qa.build`` makes one from documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.tokens import Vocabulary
from qa.types import Document, Passage

FORMAT_VERSION = 1
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

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a build contains and how it was made."""

    model: str
    dim: int
    corpus_sha256: str
    settings: dict[str, Any]
    n_documents: int
    n_passages: int
    n_units: int
    faiss: str
    format: int = FORMAT_VERSION
    created: str = ""
    files: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class VectorIndex:
    """A loaded index: passages, their vectors, a FAISS index and a lexical index.

    Attributes:
        unit_offsets: Units of passage ``i`` are rows ``unit_offsets[i]:unit_offsets[i+1]`` of ``unit_vectors``.
    """

    manifest: Manifest
    documents: dict[str, Document]
    passages: list[Passage]
    passage_vectors: FloatArray
    unit_vectors: FloatArray
    unit_offsets: npt.NDArray[np.int64]
    dense: Any  # faiss.Index
    lexical: Any  # bm25s.BM25
    idf: dict[str, float]
    path: Path | None = None
    by_id: dict[str, int] = field(default_factory=dict)
    idf_ceiling: float = 1.0
    vocabulary: Vocabulary = field(default_factory=lambda: Vocabulary(()), repr=False)
    # Passages' tokens, filled as questions touch them (qa.features.passage_tokens).
    token_cache: dict[int, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.by_id:
            self.by_id = {p.id: i for i, p in enumerate(self.passages)}
        self.idf_ceiling = max(self.idf.values(), default=1.0)
        self.vocabulary = Vocabulary(self.idf)

    @property
    def quantized(self) -> bool:
        """Whether the FAISS vectors are 8-bit (its scores approximate; see RESCORE_FACTOR)."""
        return self.manifest.faiss in QUANTIZED_TYPES


def unit_offsets_of(passages: Sequence[Passage]) -> npt.NDArray[np.int64]:
    """Row offsets of each passage's units in the unit matrix."""
    return np.concatenate([[0], np.cumsum([len(p.units) for p in passages])]).astype(np.int64)


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


def make_lexical(token_lists: Sequence[list[str]]) -> tuple[Any, dict[str, float]]:
    """A bm25s index over pre-tokenised passages, and the IDF of every token."""
    import bm25s

    lexical = bm25s.BM25()
    # bm25s needs a vocabulary: an empty index gets one placeholder passage-free token.
    lexical.index([tokens or ["\x00"] for tokens in token_lists] or [["\x00"]], show_progress=False)
    return lexical, idf_of(lexical, len(token_lists))


def idf_of(lexical: Any, n_docs: int) -> dict[str, float]:
    """BM25 IDF of each vocabulary token, from the lexical index's document frequencies."""
    df = np.diff(np.asarray(lexical.scores["indptr"]))
    vocab: dict[str, int] = lexical.vocab_dict
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    return {token: float(idf[col]) for token, col in vocab.items() if token.strip("\x00") and col < len(idf)}
