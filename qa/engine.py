"""Compose the stages: build an index from documents, and answer questions from it.

Building: ingest -> chunk -> embed -> index. Answering: retrieve -> extract -> cite.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.abstain import evidence, refusal_reason
from qa.chunk import CHUNKER_VERSION, DEFAULT_MAX_CHARS, chunk_document, retrieval_text, unit_texts
from qa.cite import cite
from qa.embed import Embedder
from qa.errors import DocumentNotFound, QueryError, WorkLimitError
from qa.extract import Candidate, answer_span, candidates, citable, rerank
from qa.index import Manifest, VectorIndex, make_dense, make_lexical, unit_offsets_of
from qa.ingest import normalize_id, text_sha256
from qa.retrieve import Mode, retrieve
from qa.tokens import TOKENIZER_VERSION, tokenize
from qa.types import Answer, Document, Hit, Passage

MAX_QUESTION_CHARS = 1000
NO_DOCUMENT = "no document with this id in the index"
# Evidence below this means "not in these documents". Chosen with benchmarks/abstention.py: the
# highest threshold that refuses no answerable question of tests/data/gold.jsonl and keeps XQuAD dev
# containment at 0.80. It withholds 44% of near misses (XQuAD questions asked of an index without
# their paragraph) where 0.30 withheld 23%, and refuses 5 of 612 right XQuAD answers where 0.30 refused 3.
DEFAULT_MIN_SCORE = 0.45
# Confidence = logistic(CONFIDENCE_SLOPE * evidence + CONFIDENCE_INTERCEPT): a logistic regression of
# "the answer contains a gold answer" on the evidence, fitted on tests/data/gold.jsonl and XQuAD dev
# (672 questions). Read it as the chance that the quote holds the answer: 0.55 at evidence 0.5
# (observed 0.57), 0.74 at 0.7 (observed 0.72), 0.87 at 0.9 (observed 0.87).
CONFIDENCE_SLOPE = 4.22
CONFIDENCE_INTERCEPT = -1.92
# Passages retrieved for extraction, whatever the number of citations asked for.
RETRIEVE_PASSAGES = 10

Progress = Callable[[int, int], None]


def clean_question(question: str) -> str:
    """Validate and trim a question.

    Raises:
        QueryError: If it is empty, over MAX_QUESTION_CHARS, or holds control characters or lone surrogates.
    """
    if not isinstance(question, str):
        raise QueryError("question must be a string")
    text = question.strip()
    if not text:
        raise QueryError("question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise QueryError(f"question has {len(text)} characters; the limit is {MAX_QUESTION_CHARS}")
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs":
            raise QueryError("question contains a lone surrogate (invalid Unicode)")
        if category == "Cc" and char not in "\t\n\r":
            raise QueryError(f"question contains a control character (U+{ord(char):04X})")
    return text


def confidence_of(evidence: float) -> float:
    """The chance that an answer with this evidence holds the right answer: monotone, in [0, 1]."""
    exponent = min(700.0, max(-700.0, -(CONFIDENCE_SLOPE * evidence + CONFIDENCE_INTERCEPT)))  # exp overflows past 709
    return round(1.0 / (1.0 + math.exp(exponent)), 4)


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


@dataclass(frozen=True, slots=True)
class Asked:
    """An answer with what led to it: the retrieved passages and the evidence score."""

    answer: Answer
    hits: list[Hit]
    evidence: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A retrieved passage with the offsets of the query's words inside its text."""

    hit: Hit
    document: Document
    highlights: tuple[tuple[int, int], ...]


class Engine:
    """Answers questions from a loaded index with one embedding model.

    Example:
        >>> from pathlib import Path
        >>> from qa.embed import SentenceTransformerEmbedder
        >>> from qa.index import load_index
        >>> engine = Engine(load_index(Path("index")), SentenceTransformerEmbedder())  # doctest: +SKIP
        >>> engine.ask("How many agencies participate in Secure Communities?").answer  # doctest: +SKIP
        'Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens.'
    """

    def __init__(self, index: VectorIndex, embedder: Embedder, *, min_score: float = DEFAULT_MIN_SCORE) -> None:
        self.index = index
        self.embedder = embedder
        self.min_score = min_score

    def _query_vector(self, text: str, mode: Mode) -> np.ndarray | None:
        return None if mode == "bm25" else self.embedder.embed_queries([text])[0]

    def ranked(self, question: str, *, mode: Mode = "hybrid") -> tuple[list[Hit], list[Candidate]]:
        """Retrieved passages, reranked by their best answer unit, and the scored units, best first."""
        vector = self._query_vector(question, mode)
        hits = retrieve(self.index, vector, question, k=RETRIEVE_PASSAGES, mode=mode)
        ranked = candidates(self.index, hits, question, vector)
        return rerank(hits, ranked), ranked

    def ask(self, question: str, *, top_k: int = 3, mode: Mode = "hybrid") -> Answer:
        """Answer a question with a verbatim quote, or abstain.

        See ``ask_detailed`` for the arguments; this returns only the answer.
        """
        return self.ask_detailed(question, top_k=top_k, mode=mode).answer

    def ask_detailed(self, question: str, *, top_k: int = 3, mode: Mode = "hybrid") -> Asked:
        """Answer a question, and keep the retrieved passages and the evidence score.

        Args:
            question: The question (trimmed; 1 to MAX_QUESTION_CHARS characters).
            top_k: Number of citations to return (1 to 20).
            mode: Retrieval mode.

        Returns:
            The answer (when ``answerable`` is false, ``answer`` is None and the
            citations are the closest passages, for reference), the hits and the evidence.

        Raises:
            QueryError: If the question or ``top_k`` breaks an input rule.
        """
        started = time.perf_counter()
        text = clean_question(question)
        if not 1 <= top_k <= 20:
            raise QueryError(f"top_k ({top_k}) must be between 1 and 20")
        hits, ranked = self.ranked(text, mode=mode)
        answer_unit = answer_span(ranked) if ranked else None
        chosen = citable(ranked, answer_unit, top_k) if answer_unit else []
        best = evidence(text, chosen[0], self.index.vocabulary) if chosen else 0.0
        answerable = bool(chosen) and best >= self.min_score
        spans = [answer_unit if i == 0 and answer_unit else c.unit for i, c in enumerate(chosen)]
        citations = tuple(
            cite(self.index.documents[c.passage.doc_id], c.passage, span, confidence_of(c.score))
            for c, span in zip(chosen, spans, strict=True)
        )
        answer = Answer(
            question=text,
            answerable=answerable,
            answer=citations[0].quote if answerable else None,
            confidence=confidence_of(best) if chosen else 0.0,
            citations=citations,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            reason="" if answerable else refusal_reason(text, chosen[0] if chosen else None, self.index.vocabulary),
        )
        return Asked(answer, hits, best)

    def search(self, query: str, *, k: int = 10, mode: Mode = "hybrid") -> list[SearchResult]:
        """Passages for a query, with the offsets of its words in each passage's text.

        Raises:
            QueryError: If the query or ``k`` breaks an input rule.
        """
        text = clean_question(query)
        if not 1 <= k <= 50:
            raise QueryError(f"k ({k}) must be between 1 and 50")
        hits = retrieve(self.index, self._query_vector(text, mode), text, k=k, mode=mode)
        words = set(tokenize(text))
        return [
            SearchResult(hit, self.index.documents[hit.passage.doc_id], tuple(highlight_spans(hit.passage.text, words)))
            for hit in hits
        ]

    def document(self, document_id: str) -> Document:
        """A document by id (in any Unicode normal form). Raises DocumentNotFound.

        The error never repeats the id: it may be long, and it came from the caller.
        """
        doc = self.index.documents.get(document_id) or self.index.documents.get(normalize_id(document_id))
        if doc is None:
            raise DocumentNotFound(NO_DOCUMENT)
        return doc

    def passage(self, passage_id: str) -> Passage:
        """A passage by id. Raises DocumentNotFound."""
        row = self.index.by_id.get(passage_id)
        if row is None:
            raise DocumentNotFound("no passage with this id in the index")
        return self.index.passages[row]


def highlight_spans(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Offsets in ``text`` of the words whose token is in ``words``."""
    import re

    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"\w+(?:[.,'’]\w+)*", text):
        if any(token in words for token in tokenize(match.group(0))):
            spans.append((match.start(), match.end()))
    return spans


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
