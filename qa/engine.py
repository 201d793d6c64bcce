"""Answer questions from a loaded index: retrieve -> describe candidates -> score -> cite.

Building an index is ``qa.build``; reading and writing one is ``qa.storage``.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.cite import cite
from qa.defaults import DEFAULT_MIN_SCORE, DEFAULT_READER_BELOW, DEFAULT_READER_CANDIDATES, MAX_ANSWERS
from qa.embed import Embedder
from qa.errors import NO_DOCUMENT, DocumentNotFound, QueryError
from qa.features import candidate_features, candidate_headings, candidate_text, passage_tokens
from qa.filters import Filter, parse_filter, schema_of
from qa.index import VectorIndex
from qa.ingest import normalize_id
from qa.metadata import FieldType
from qa.question import Profile, profile
from qa.reader import Reader, read_as, reader_for
from qa.retrieve import LOCAL, Mode, Searcher, retrieve
from qa.scorer import READER_COLUMN, AnswerModel, hard_rule, load_model, refusal_reason
from qa.selection import Scored, alternatives, answer_span, citable, rank, rerank, reread, rereads
from qa.tokens import tokenize
from qa.types import DISTINCT, Alternative, Answer, Distinct, Document, Hit, Passage

if TYPE_CHECKING:
    from qa.config import Settings

MAX_QUESTION_CHARS = 1000
# Passages retrieved for extraction, whatever the number of citations asked for.
RETRIEVE_PASSAGES = 10


def clean_question(question: str) -> str:
    """Validate and trim a question.

    Raises:
        QueryError: If it is empty (or holds only invisible format characters), over MAX_QUESTION_CHARS, or
            holds control characters (tab, newline and carriage return aside) or lone surrogates.
    """
    if not isinstance(question, str):
        raise QueryError("question must be a string")
    text = question.strip()
    if all(unicodedata.category(char) == "Cf" or char.isspace() for char in text):
        # "" and what only looks empty: zero-width spaces, a byte-order mark, other invisible format characters
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


@dataclass(frozen=True, slots=True)
class Asked:
    """An answer with what led to it.

    Attributes:
        hits: The retrieved passages, reordered by their best candidate.
        evidence: The best candidate's confidence, whether or not it was withheld (0 without one).
        terms: Each feature's term in the best candidate's logit (``qa.scorer.AnswerModel.terms``):
            what decided the answer or the refusal.
        reader: The cross-encoder's logit for the best candidate (None when it did not reread).
    """

    answer: Answer
    hits: list[Hit]
    evidence: float
    terms: dict[str, float]
    reader: float | None = None


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
        >>> from qa.storage import load_index
        >>> engine = Engine(load_index(Path("index")), SentenceTransformerEmbedder())  # doctest: +SKIP
        >>> engine.ask("How many agencies participate in Secure Communities?").answer  # doctest: +SKIP
        'Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens.'
    """

    def __init__(
        self,
        index: VectorIndex,
        embedder: Embedder,
        *,
        min_score: float = DEFAULT_MIN_SCORE,
        model: AnswerModel | None = None,
        reader: Reader | None = None,
        reread: int = DEFAULT_READER_CANDIDATES,
        reread_below: float = DEFAULT_READER_BELOW,
        searcher: Searcher = LOCAL,
    ) -> None:
        self.index = index
        # Where retrieval's first stage runs: this process, or the shards of ``qa serve --ray``.
        self.searcher = searcher
        self.embedder = embedder
        self.min_score = min_score
        self.model = model or load_model(embedder.name)
        # With a cross-encoder, the ``reread`` best candidates of the first ranking are rescored by the
        # reranker, which reads its logit beside their features (qa.selection.reread).
        self.reader = reader if reread > 0 else None
        self.reread = reread
        # ... but only when the first ranker's best confidence is below this (1: always).
        self.reread_below = reread_below
        self.reranker = load_model(embedder.name, reranker=True) if self.reader is not None else None
        self._schema: dict[str, frozenset[FieldType]] | None = None

    def with_index(self, index: VectorIndex) -> Engine:
        """The same engine (model, threshold, scorer, cross-encoder, searcher) over another index."""
        return Engine(index, self.embedder, min_score=self.min_score, model=self.model, reader=self.reader,
                      reread=self.reread, reread_below=self.reread_below, searcher=self.searcher)  # fmt: skip

    def parse_filter(self, data: object) -> Filter:
        """A filter (``qa.filters``) checked against the fields and types of this index's documents.

        Raises:
            FilterError: Naming a field no document has, or a value of a type the field never holds.
        """
        if self._schema is None:  # once per commit: an engine serves one
            self._schema = schema_of((d.id, d.metadata) for d in self.index.documents.values())
        return parse_filter(data, self._schema)

    def _query_vector(self, text: str, mode: Mode) -> np.ndarray | None:
        return None if mode == "bm25" else self.embedder.embed_queries([text])[0]

    def ranked(self, question: str, *, mode: Mode = "hybrid") -> tuple[list[Hit], list[Scored]]:
        """Retrieved passages, reordered by their best candidate, and the scored candidates, best first."""
        hits, ranked, _, _ = self._ranked(question, mode, None)
        return hits, ranked

    def _ranked(
        self, question: str, mode: Mode, where: Filter | None
    ) -> tuple[list[Hit], list[Scored], Profile, AnswerModel]:
        """Hits, scored candidates and profile, and the model whose confidence the best candidate carries."""
        vector = self._query_vector(question, mode)
        hits = retrieve(
            self.index, vector, question, k=RETRIEVE_PASSAGES, mode=mode, searcher=self.searcher, where=where
        )
        asked = profile(question, self.index.idf, self.index.idf_ceiling, self.index.vocabulary)
        found, matrix = candidate_features(self.index, hits, asked, vector)
        ranked, model = self.reread_best(question, rank(found, matrix, self.model))
        return rerank(hits, ranked), ranked, asked, model

    def reread_best(self, question: str, ranked: list[Scored]) -> tuple[list[Scored], AnswerModel]:
        """``ranked`` with its best candidates reread by the cross-encoder and reranked, and the model whose
        confidence they carry; as they are, with the first ranker, when there is no cross-encoder or the
        first ranker's best is confident enough (``reread_below``, fitted: ``fitting.fit.choose_gate``)."""
        if self.reader is None or self.reranker is None or not ranked:
            return ranked, self.model
        if not rereads(ranked[0].confidence, self.reread_below):
            return ranked, self.model
        top = [read_as(candidate_text(self.index, s.candidate), candidate_headings(s.candidate))
               for s in ranked[: self.reread]]  # fmt: skip
        return reread(ranked, self.reader.score(question, top), self.reranker), self.reranker

    def ask(
        self,
        question: str,
        *,
        top_k: int = 3,
        mode: Mode = "hybrid",
        where: Filter | None = None,
        answers: int = 1,
        distinct: Distinct = "quotes",
    ) -> Answer:
        """Answer a question with a verbatim quote, or abstain.

        See ``ask_detailed`` for the arguments; this returns only the answer.
        """
        return self.ask_detailed(
            question, top_k=top_k, mode=mode, where=where, answers=answers, distinct=distinct
        ).answer

    def ask_detailed(
        self,
        question: str,
        *,
        top_k: int = 3,
        mode: Mode = "hybrid",
        where: Filter | None = None,
        answers: int = 1,
        distinct: Distinct = "quotes",
    ) -> Asked:
        """Answer a question, and keep the retrieved passages and the evidence score.

        Args:
            question: The question (trimmed; 1 to MAX_QUESTION_CHARS characters).
            top_k: Number of citations to return (1 to 20).
            mode: Retrieval mode.
            where: Answer only from the documents this filter matches (``parse_filter``).
            answers: How many distinct answers to give (1 to MAX_ANSWERS), each with its confidence:
                ``Answer.answers``.
            distinct: What makes them distinct (``qa.selection.alternatives``): "quotes" (two may come
                from one passage) or "passages" (each from a passage of its own).

        Returns:
            The answer (when ``answerable`` is false, ``answer`` is None and the
            citations are the closest passages, for reference), the hits and the evidence.

        Raises:
            QueryError: If the question, ``top_k``, ``answers`` or ``distinct`` breaks an input rule.
        """
        started = time.perf_counter()
        text = clean_question(question)
        if not 1 <= top_k <= 20:
            raise QueryError(f"top_k ({top_k}) must be between 1 and 20")
        if not 1 <= answers <= MAX_ANSWERS:
            raise QueryError(f"answers ({answers}) must be between 1 and {MAX_ANSWERS}")
        if distinct not in DISTINCT:
            raise QueryError(f"distinct must be one of {', '.join(DISTINCT)}")
        hits, ranked, asked, model = self._ranked(text, mode, where)
        chosen = citable(ranked, top_k, model.merge_margin)
        best = chosen[0].confidence if chosen else 0.0
        # The hard rules (qa.scorer.HARD_RULES, unknown names among them) refuse whatever the confidence.
        rule = hard_rule(chosen[0].row) if chosen else None
        answerable = bool(chosen) and best >= self.min_score and rule is None
        citations = tuple(
            cite(
                self.index.documents[s.candidate.passage.doc_id],
                s.candidate.passage,
                answer_span(ranked, model.merge_margin) if i == 0 else s.candidate.unit,
                s.confidence,
            )
            for i, s in enumerate(chosen)
        )
        reason = "" if answerable else self._refusal(model, asked, chosen[0] if chosen else None, rule)
        given: tuple[Alternative, ...] = ()
        if answerable:
            first = Alternative(citations[0].quote, best, citations[:1])
            more = [s for s in alternatives(ranked, answers - 1, model.merge_margin, distinct) if self._givable(s)]
            given = (first, *(self._alternative(s) for s in more))
        answer = Answer(
            question=text,
            answerable=answerable,
            answer=citations[0].quote if answerable else None,
            confidence=best,
            citations=citations,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            reason=reason,
            answers=given,
        )
        terms = model.terms(chosen[0].inputs) if chosen else {}
        read = float(chosen[0].row[READER_COLUMN]) if chosen and model.reread else None
        return Asked(answer, hits, best, terms, read)

    def _givable(self, scored: Scored) -> bool:
        """Whether a candidate may be another answer: no hard rule refuses it. Its confidence comes with it,
        and may be below the threshold: the caller reads it (only the first answer is withheld below it)."""
        return hard_rule(scored.row) is None

    def _alternative(self, scored: Scored) -> Alternative:
        candidate = scored.candidate
        citation = cite(self.index.documents[candidate.passage.doc_id], candidate.passage, candidate.unit,
                        scored.confidence)  # fmt: skip
        return Alternative(citation.quote, scored.confidence, (citation,))

    def _refusal(self, model: AnswerModel, asked: Profile, best: Scored | None, rule: str | None) -> str:
        if best is None:
            return refusal_reason(model, None, asked, frozenset())
        present = passage_tokens(self.index, self.index.by_id[best.candidate.passage.id]).all
        return refusal_reason(model, best.inputs, asked, asked.tokens - present, rule)

    def search(
        self, query: str, *, k: int = 10, mode: Mode = "hybrid", where: Filter | None = None
    ) -> list[SearchResult]:
        """Passages for a query (of the documents ``where`` matches), with the offsets of its words in each.

        Raises:
            QueryError: If the query or ``k`` breaks an input rule.
        """
        text = clean_question(query)
        if not 1 <= k <= 50:
            raise QueryError(f"k ({k}) must be between 1 and 50")
        vector = self._query_vector(text, mode)
        hits = retrieve(self.index, vector, text, k=k, mode=mode, searcher=self.searcher, where=where)
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


def engine_of(index: VectorIndex, embedder: Embedder, settings: Settings, searcher: Searcher = LOCAL) -> Engine:
    """The engine the settings describe over ``index``: threshold and cross-encoder (``QA_READER_*``).

    Raises:
        ModelError: If the cross-encoder is wanted and cannot be loaded.
    """
    reader = reader_for(
        settings.reader_candidates, settings.reader_tokens, settings.reader_quantized, settings.reader_threads
    )
    return Engine(index, embedder, min_score=settings.min_score, reader=reader, reread=settings.reader_candidates,
                  reread_below=settings.reader_below, searcher=searcher)  # fmt: skip


def highlight_spans(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Offsets in ``text`` of the words whose token is in ``words``."""
    import re

    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"\w+(?:[.,'’]\w+)*", text):
        if any(token in words for token in tokenize(match.group(0))):
            spans.append((match.start(), match.end()))
    return spans
