"""Build an index from documents: ingest -> chunk -> embed -> index, and update one.

Answering is ``qa.engine``; writing the index to disk is ``qa.storage``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa.chunk import CHUNKER_VERSION, chunk_document, retrieval_text, unit_texts
from qa.defaults import DEFAULT_MAX_CHARS
from qa.embed import Embedder
from qa.errors import NO_DOCUMENT, DocumentNotFound, WorkLimitError
from qa.index import (
    FLAT_TYPE,
    Postings,
    Segment,
    VectorIndex,
    dense_type,
    make_dense,
    manifest_of,
    new_segment_name,
    unit_offsets_of,
    view_of,
)
from qa.ingest import text_sha256
from qa.tokens import TOKENIZER_VERSION, tokenize
from qa.types import Document, Passage

Progress = Callable[[int, int], None]
# Rows ``lo:hi`` of a matrix; a Gather makes one matrix of such ranges, the named file of a segment.
RowRange = tuple[np.ndarray, int, int]
Gather = Callable[[Sequence[RowRange], int, str], np.ndarray]


def settings_fingerprint(embedder_name: str, max_chars: int, quantize: bool = False) -> dict[str, object]:
    """The settings a build depends on: a change means a rebuild."""
    fingerprint: dict[str, object] = {
        "model": embedder_name,
        "chunker_version": CHUNKER_VERSION,
        "tokenizer_version": TOKENIZER_VERSION,
        "max_chars": max_chars,
    }
    if quantize:  # only when set, so that indexes built before the option existed stay current
        fingerprint["quantize_vectors"] = True
    return fingerprint


def corpus_sha256(documents: Sequence[Document]) -> str:
    """One digest over every document's id, title and text."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        digest.update(json.dumps([doc.id, doc.title, text_sha256(doc.text)]).encode())
    return digest.hexdigest()


def _embed_in_batches(
    embedder: Embedder, texts: list[str], progress: Progress | None, done: int, total: int
) -> np.ndarray:
    batch = 256
    # Longest first, so each call pads its texts to similar lengths (the model pads within a call);
    # the rows go back to the caller's order at the end. This keeps the build at raw model speed.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    parts = []
    for i in range(0, len(order), batch):
        parts.append(embedder.embed_passages([texts[j] for j in order[i : i + batch]]))
        if progress:
            progress(done + min(i + batch, len(texts)), total)
    if not parts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    vectors = np.empty_like(np.concatenate(parts))
    vectors[order] = np.concatenate(parts)
    return vectors


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    """A new segment before its vectors: documents and passages in id order, and the passages to embed.

    Attributes:
        fresh: The passages with no vector to reuse: their retrieval texts, then their units' texts,
            are what ``texts`` returns for embedding.
        reuse: The index the other passages' vectors come from.
    """

    documents: list[Document]
    passages: list[Passage]
    fresh: list[Passage]
    reuse: VectorIndex | None

    def texts(self) -> list[str]:
        """The texts to embed, in the order ``segment_from_vectors`` takes their vectors."""
        return [retrieval_text(p) for p in self.fresh] + [t for p in self.fresh for t in unit_texts(p)]


def plan_segment(
    documents: Sequence[Document],
    model: str,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    previous: VectorIndex | None = None,
    chunks: Mapping[str, list[Passage]] | None = None,
) -> SegmentPlan:
    """Chunk documents (or take their ``chunks``, made elsewhere) and find the passages to embed.

    ``previous``'s vectors are reused for its live passages of the same id when it was built with
    ``model``, so a replaced document embeds only the passages that changed.
    """
    documents = sorted(documents, key=lambda d: d.id)
    passages = [
        p
        for doc in documents
        for p in (chunks[doc.id] if chunks is not None else chunk_document(doc, max_chars=max_chars))
    ]
    reuse = previous if previous is not None and previous.manifest.model == model else None
    fresh = [p for p in passages if reuse is None or p.id not in reuse.by_id]
    return SegmentPlan(documents, passages, fresh, reuse)


def segment_from_vectors(plan: SegmentPlan, vectors: np.ndarray, dim: int, *, quantize: bool) -> Segment:
    """The planned segment, given the vectors of ``plan.texts()`` in order."""
    k = len(plan.fresh)
    passage_vectors, unit_vectors = _assemble(plan.passages, plan.fresh, vectors[:k], vectors[k:], plan.reuse, dim)
    return segment_of(plan.documents, plan.passages, passage_vectors, unit_vectors, quantize=quantize)


def build_segment(
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    quantize: bool = False,
    previous: VectorIndex | None = None,
    progress: Progress | None = None,
) -> Segment:
    """Chunk, embed and index documents into a new segment, in document id order.

    Args:
        documents: Parsed documents.
        embedder: The embedding model.
        max_chars: Passage length bound.
        quantize: Store the FAISS vectors in 8 bits (``qa.index.make_dense``).
        previous: An index whose vectors are reused for its live passages of the same id, so a
            replaced document embeds only the passages that changed.
        progress: Called with (texts embedded, texts to embed).
    """
    plan = plan_segment(documents, embedder.name, max_chars=max_chars, previous=previous)
    texts = plan.texts()
    k = len(plan.fresh)
    # Passages, then units: each call sorts its texts by length (``_embed_in_batches``).
    fresh_pv = _embed_in_batches(embedder, texts[:k], progress, 0, len(texts))
    fresh_uv = _embed_in_batches(embedder, texts[k:], progress, k, len(texts))
    return segment_from_vectors(plan, np.concatenate([fresh_pv, fresh_uv]), embedder.dim, quantize=quantize)


def segment_of(
    documents: Sequence[Document],
    passages: list[Passage],
    passage_vectors: np.ndarray,
    unit_vectors: np.ndarray,
    *,
    quantize: bool,
    name: str | None = None,
) -> Segment:
    """A new segment from passages and their vectors: its lexical index made here, its FAISS index too
    unless it is flat (made when first searched: see ``Segment.dense``)."""
    faiss_type = dense_type(len(passages), quantize=quantize)
    dense = None if faiss_type == FLAT_TYPE else make_dense(passage_vectors, quantize=quantize)
    postings = Postings.of([tokenize(retrieval_text(p)) for p in passages])
    return Segment(
        name or new_segment_name(), {d.id: d for d in documents}, passages, passage_vectors, unit_vectors,
        unit_offsets_of(passages), dense, postings, faiss_type,
    )  # fmt: skip


def build_index(
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    quantize: bool = False,
    progress: Progress | None = None,
) -> VectorIndex:
    """An index of one segment holding ``documents`` (in memory; ``qa.storage.save_index`` writes it)."""
    segment = build_segment(documents, embedder, max_chars=max_chars, quantize=quantize, progress=progress)
    settings = settings_fingerprint(embedder.name, max_chars, quantize)
    return view_of(manifest_of(embedder.name, embedder.dim, settings, [segment], [frozenset()]), [segment])


def _assemble(
    passages: list[Passage],
    fresh: list[Passage],
    fresh_pv: np.ndarray,
    fresh_uv: np.ndarray,
    reuse: VectorIndex | None,
    dim: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Passage and unit matrices in passage order, from fresh vectors and reused ones."""
    if reuse is None:
        return fresh_pv.astype(np.float32), fresh_uv.astype(np.float32)
    fresh_row = {p.id: i for i, p in enumerate(fresh)}
    fresh_unit_offsets = unit_offsets_of(fresh)
    pv = np.zeros((len(passages), dim), dtype=np.float32)
    uv_parts: list[np.ndarray] = []
    for i, p in enumerate(passages):
        if p.id in fresh_row:
            j = fresh_row[p.id]
            pv[i] = fresh_pv[j]
            uv_parts.append(fresh_uv[fresh_unit_offsets[j] : fresh_unit_offsets[j + 1]])
        else:
            j = reuse.by_id[p.id]
            pv[i] = reuse.passage_vectors[j]
            uv_parts.append(reuse.unit_vectors_of(j))
    uv = np.concatenate(uv_parts).astype(np.float32) if uv_parts else np.zeros((0, dim), dtype=np.float32)
    return pv, uv


def gather_in_memory(parts: Sequence[RowRange], dim: int, file_name: str) -> np.ndarray:
    """Row ranges of several matrices copied into one matrix in memory (``Gather`` for small merges)."""
    out = np.empty((sum(hi - lo for _, lo, hi in parts), dim), dtype=np.float32)
    row = 0
    for array, lo, hi in parts:
        out[row : row + hi - lo] = array[lo:hi]
        row += hi - lo
    return out


def merge_segments(
    index: VectorIndex, names: Sequence[str], *, name: str | None = None, gather: Gather = gather_in_memory
) -> Segment:
    """One segment holding the live documents of the named segments of ``index``, nothing embedded again.

    Documents are in id order, as a one-shot build orders them; tombstoned passages are dropped.
    """
    chosen = set(names)
    ids = [d for s in index.segments if s.name in chosen for d in s.documents if index.home.get(d) is s]
    return segment_from(index, ids, name=name, gather=gather)


def segment_from(
    index: VectorIndex, document_ids: Iterable[str], *, name: str | None = None, gather: Gather = gather_in_memory
) -> Segment:
    """A new segment holding these live documents of ``index`` with their vectors: nothing embedded.

    Documents are in id order, as a one-shot build orders them. A document's passages are consecutive
    rows of its segment, and their units consecutive unit rows: each is one row range, and ``gather``
    makes each matrix from the ranges (in memory, or written straight to the new segment's files).
    """
    documents = sorted((index.documents[d] for d in document_ids), key=lambda d: d.id)
    homes = [index.home[doc.id] for doc in documents]
    passage_parts: list[RowRange] = []
    unit_parts: list[RowRange] = []
    passages: list[Passage] = []
    for segment, doc in zip(homes, documents, strict=True):
        rows = segment.rows_of[doc.id]
        passage_parts.append((segment.passage_vectors, rows.start, rows.stop))
        unit_parts.append(
            (segment.unit_vectors, int(segment.unit_offsets[rows.start]), int(segment.unit_offsets[rows.stop]))
        )
        passages.extend(segment.passages[rows.start : rows.stop])
    dim = index.manifest.dim
    passage_vectors = gather(passage_parts, dim, "passage_vectors.npy")
    unit_vectors = gather(unit_parts, dim, "unit_vectors.npy")
    quantize = bool(index.manifest.settings.get("quantize_vectors", False))
    return segment_of(documents, passages, passage_vectors, unit_vectors, quantize=quantize, name=name)


def check_write_cost(doc: Document, *, max_chars: int, max_passages: int, max_texts: int) -> int:
    """Refuse a document whose indexing would cost more than one write may, before any embedding.

    The cost of a write is the number of texts embedded: the document's passages and their answer
    units (sentences, list items, table rows). A few kilobytes of ``w1<br>w2<br>...`` make thousands.

    Returns:
        The document's passage count.

    Raises:
        WorkLimitError: Naming the limit passed and the count that passed it.
    """
    passages = chunk_document(doc, max_chars=max_chars)
    if len(passages) > max_passages:
        raise WorkLimitError(
            f"the document makes {len(passages):,} passages; one document may make at most {max_passages:,} "
            "(QA_MAX_DOCUMENT_PASSAGES)"
        )
    texts = len(passages) + sum(len(unit_texts(p)) for p in passages)
    if texts > max_texts:
        raise WorkLimitError(
            f"the document makes {texts:,} texts to embed (passages and their sentences); one write may embed "
            f"at most {max_texts:,} (QA_MAX_WRITE_TEXTS)"
        )
    return len(passages)


def update_index(
    index: VectorIndex,
    embedder: Embedder,
    *,
    add: Sequence[Document] = (),
    remove: Sequence[str] = (),
) -> VectorIndex:
    """A new view with documents added (or replaced, by id) in one new segment, and removed by tombstones.

    Only the added documents' passages whose text changed are embedded; nothing else is rebuilt. A
    segment whose every document is deleted leaves the commit. The given index is not modified, so it
    keeps serving until the caller swaps.

    Raises:
        DocumentNotFound: If a document to remove is not in the index.
    """
    for doc_id in remove:
        if doc_id not in index.documents:
            raise DocumentNotFound(NO_DOCUMENT)
    added = []
    if add:
        quantize = bool(index.manifest.settings.get("quantize_vectors", False))
        segment = build_segment(add, embedder, max_chars=built_max_chars(index), quantize=quantize, previous=index)
        added.append((segment, frozenset[str]()))
    return with_changes(index, added, remove)


def with_changes(
    index: VectorIndex, added: Iterable[tuple[Segment, frozenset[str]]], remove: Iterable[str] = ()
) -> VectorIndex:
    """``index`` with new segments (each with its own tombstones) after its own, and documents removed.

    A document in a new segment replaces the one of its id in the older segments (which get a
    tombstone); a segment whose every document is deleted leaves the commit.
    """
    added = list(added)
    gone = frozenset(remove).union(*(segment.documents.keys() for segment, _ in added))
    segments: list[Segment] = []
    deleted: list[frozenset[str]] = []
    for segment, tombstones in zip(index.segments, index.deleted, strict=True):
        now = tombstones | (gone & segment.documents.keys())
        if len(now) < len(segment.documents):
            segments.append(segment)
            deleted.append(frozenset(now))
    for segment, tombstones in added:
        segments.append(segment)
        deleted.append(tombstones)
    return with_segments(index, segments, deleted)


def empty_index(model: str, dim: int, settings: dict[str, object]) -> VectorIndex:
    """An index of no segment: where a first build starts."""
    return view_of(manifest_of(model, dim, settings, [], []), [])


def with_segments(index: VectorIndex, segments: Sequence[Segment], deleted: Sequence[frozenset[str]]) -> VectorIndex:
    """A new view of ``index``'s model and settings over other segments and tombstones."""
    manifest = index.manifest
    return view_of(
        manifest_of(manifest.model, manifest.dim, manifest.settings, segments, deleted), segments, previous=index
    )


def built_max_chars(index: VectorIndex) -> int:
    """The passage length bound ``index`` was built with: the one its updates must use too."""
    return int(str(index.manifest.settings.get("max_chars", DEFAULT_MAX_CHARS)))
