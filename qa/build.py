"""Build an index from documents: ingest -> chunk -> embed -> index, and update one.

Answering is ``qa.engine``; writing the index to disk is ``qa.storage``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np

from qa.chunk import CHUNKER_VERSION, chunk_document, retrieval_text, unit_texts
from qa.defaults import DEFAULT_MAX_CHARS
from qa.embed import Embedder
from qa.errors import NO_DOCUMENT, DocumentNotFound, WorkLimitError
from qa.index import Manifest, VectorIndex, make_dense, make_lexical, unit_offsets_of
from qa.ingest import text_sha256
from qa.tokens import TOKENIZER_VERSION, tokenize
from qa.types import Document, Passage

Progress = Callable[[int, int], None]


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


def build_index(
    documents: Sequence[Document],
    embedder: Embedder,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    quantize: bool = False,
    previous: VectorIndex | None = None,
    progress: Progress | None = None,
) -> VectorIndex:
    """Chunk, embed and index documents in memory.

    Args:
        documents: Parsed documents.
        embedder: The embedding model.
        max_chars: Passage length bound.
        quantize: Store the FAISS vectors in 8 bits (``qa.index.make_dense``).
        previous: An index whose vectors are reused for unchanged passages (same id), so
            an update embeds only what changed.
        progress: Called with (texts embedded, texts to embed).
    """
    documents = sorted(documents, key=lambda d: d.id)
    passages = [p for doc in documents for p in chunk_document(doc, max_chars=max_chars)]
    reuse = previous if previous is not None and previous.manifest.model == embedder.name else None
    fresh = [p for p in passages if reuse is None or p.id not in reuse.by_id]
    fresh_units = [t for p in fresh for t in unit_texts(p)]
    total = len(fresh) + len(fresh_units)
    fresh_pv = _embed_in_batches(embedder, [retrieval_text(p) for p in fresh], progress, 0, total)
    fresh_uv = _embed_in_batches(embedder, fresh_units, progress, len(fresh), total)
    passage_vectors, unit_vectors = _assemble(passages, fresh, fresh_pv, fresh_uv, reuse, embedder.dim)
    lexical, idf = make_lexical([tokenize(retrieval_text(p)) for p in passages])
    dense = make_dense(passage_vectors, quantize=quantize)
    manifest = Manifest(
        model=embedder.name,
        dim=embedder.dim,
        corpus_sha256=corpus_sha256(documents),
        settings=settings_fingerprint(embedder.name, max_chars, quantize),
        n_documents=len(documents),
        n_passages=len(passages),
        n_units=len(unit_vectors),
        faiss=type(dense).__name__,
    )
    return VectorIndex(
        manifest, {d.id: d for d in documents}, passages, passage_vectors, unit_vectors,
        unit_offsets_of(passages), dense, lexical, idf,
    )  # fmt: skip


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
            uv_parts.append(np.asarray(reuse.unit_vectors[reuse.unit_offsets[j] : reuse.unit_offsets[j + 1]]))
    uv = np.concatenate(uv_parts).astype(np.float32) if uv_parts else np.zeros((0, dim), dtype=np.float32)
    return pv, uv


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
    """A new index with documents added (or replaced, by id) and removed.

    Only passages whose text changed are embedded; the rest reuse their vectors.
    The given index is not modified, so it keeps serving until the caller swaps.

    Raises:
        DocumentNotFound: If a document to remove is not in the index.
    """
    documents = dict(index.documents)
    for doc_id in remove:
        if doc_id not in documents:
            raise DocumentNotFound(NO_DOCUMENT)
        del documents[doc_id]
    documents.update((doc.id, doc) for doc in add)
    quantize = bool(index.manifest.settings.get("quantize_vectors", False))
    return build_index(
        list(documents.values()), embedder, max_chars=built_max_chars(index), quantize=quantize, previous=index
    )


def built_max_chars(index: VectorIndex) -> int:
    """The passage length bound ``index`` was built with: the one its updates must use too."""
    return int(str(index.manifest.settings.get("max_chars", DEFAULT_MAX_CHARS)))
