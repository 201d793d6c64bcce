"""Score an engine on a gold set: answers, sections, citations, retrieval, abstention, latency.

``evaluate`` asks every question once per mode and returns each item's
scores and the aggregate. Aggregate keys (stable; ``qa eval --json`` prints them):

=========================  ====================================================================
``n``, ``n_answerable``    questions, and those the gold says are answerable
``containment``            share of answerable questions whose answer contains a gold answer
``span_coverage``          ... whose answer covers at least half of a gold span where the gold locates
                           it (``covers_half``; SQuAD sets; without offsets the same as containment)
``containment_top3``       ... whose first three citations contain one
``containment_answers3``   ... of which one of three distinct answers (``answers=3``, distinct quotes
                           unless ``distinct`` says passages) contains one
``exact_match``, ``f1``    SQuAD exact match and token F1 of the answer (answerable questions)
``median_answer_chars``    median answer length in characters
``median_answer_units``    median number of sentences (units) in an answer
``section_accuracy``       share of answerable questions with a listed section on the first citation
``quote_exactness``        share of all citations whose quote equals the document text at its offsets
``recall@1/5/10``          share of answerable questions with a gold passage in the top k
``mrr@10``, ``ndcg@10``    mean reciprocal rank of the first gold passage, and mean nDCG of all
                           the gold passages in the index (binary relevance, ``is_relevant``)
``citation_precision``     share of citations (answered questions) that contain a gold answer
``citation_recall``        share of answerable questions with at least one such citation
``abstention_*``           precision, recall, F1 of abstaining on unanswerable questions
``false_refusal_rate``     share of answerable questions refused
``latency_p50/p95/p99_ms`` time per question, model loaded and warm
``ece``                    expected calibration error of ``confidence`` against "the would-be
                           answer holds a gold answer" (0 for an unanswerable question), 10 bins
=========================  ====================================================================

Every figure is computed by a function of ``qa.metrics`` (a share is ``metrics.mean`` of 0/1 flags).
The retrieval figures score each item's ``retrieved`` passage ids against its ``relevant`` ids: every
passage of the index that ``is_relevant``. Each item's citations are ``qa.records.citation_record``
plus two keys: ``exact`` (the quote is the text at its offsets) and ``has_answer``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from qa import metrics
from qa.cite import is_verbatim
from qa.engine import Asked, clean_question
from qa.errors import CorpusError, QueryError
from qa.gold import GoldItem
from qa.records import citation_record
from qa.retrieve import Mode
from qa.types import Distinct, Document, Passage

# Passages of each ranking that are scored: the deepest cut-off reported (recall@10, mrr@10, ndcg@10).
RETRIEVAL_DEPTH = 10
# Distinct answers asked for with each question: `containment_answers3` scores them beside the top-3 citations.
ANSWERS = 3


class Corpus(Protocol):
    """What evaluation reads of an index: the documents (for offsets) and every live passage (for relevance)."""

    @property
    def documents(self) -> Mapping[str, Document]: ...

    def live_passages(self) -> Iterator[Passage]: ...


class Answerer(Protocol):
    """What evaluation needs of an engine: ``qa.engine.Engine`` is one, and tests pass a small fake."""

    @property
    def index(self) -> Corpus: ...

    @property
    def embedder(self) -> object: ...

    def ask_detailed(
        self, question: str, *, top_k: int = 3, mode: Mode = "hybrid", answers: int = 1, distinct: Distinct = "quotes"
    ) -> Asked: ...

    def passage(self, passage_id: str) -> Passage: ...


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One question's outcome and scores.

    Attributes:
        retrieved: Ids of the first ``RETRIEVAL_DEPTH`` retrieved passages, best first.
        relevant: Ids of every passage in the index that ``is_relevant`` to the item.
        citations: ``citation_record`` of each citation, plus ``exact`` and ``has_answer``.
    """

    item: GoldItem
    answer: str | None
    abstained: bool
    evidence: float
    confidence: float
    right: bool
    terms: dict[str, float]
    reader: float | None
    contained: bool
    span_covered: bool
    contained_top3: bool
    contained_answers3: bool
    exact_match: float
    f1: float
    answer_units: int
    section: str
    section_ok: bool | None
    retrieved: tuple[str, ...]
    relevant: frozenset[str]
    citations: list[dict[str, Any]]
    latency_ms: float


@dataclass(slots=True)
class EvalResult:
    """Every item's result and the aggregate, for one mode."""

    mode: str
    items: list[ItemResult] = field(default_factory=list)
    aggregate: dict[str, float] = field(default_factory=dict)


def is_relevant(item: GoldItem, passage: Passage) -> bool:
    """Whether a passage is a gold passage: inside the gold paragraph, or holding a gold answer."""
    if item.paragraph is not None:
        doc_id, start, end = item.paragraph
        return passage.doc_id == doc_id and start <= passage.start and passage.end <= end
    return metrics.contains_answer(passage.text, item.answers)


def covers_half(item: GoldItem, doc_id: str, start: int, end: int, contained: bool) -> bool:
    """Whether ``start:end`` of ``doc_id`` overlaps at least half of one of ``item``'s gold spans: the answer
    where the gold locates it, so a sentence that repeats a short answer's words elsewhere does not count and
    one holding most of a span that crosses a sentence's end does. Where the gold gives no offsets (or the
    question is unanswerable), ``contained``: whether the text holds a gold answer.

    Example:
        >>> item = GoldItem(id="q", question="?", answers=("cde",), spans=(("d", 2, 5),))
        >>> [covers_half(item, "d", 0, 4, False), covers_half(item, "d", 0, 3, True)]
        [True, False]
        >>> covers_half(item, "e", 0, 9, True)
        False
    """
    if item.unanswerable or not item.spans:
        return contained
    return any(d == doc_id and 2 * (min(end, e) - max(start, s)) >= e - s for d, s, e in item.spans)


def relevant_ids(item: GoldItem, passages: Sequence[Passage]) -> frozenset[str]:
    """The ids of the passages that are relevant to the item (``is_relevant``)."""
    return frozenset(p.id for p in passages if is_relevant(item, p))


def evaluate_item(engine: Answerer, item: GoldItem, *, mode: Mode, k: int, distinct: Distinct = "quotes") -> ItemResult:
    """Ask one gold question and score the outcome."""
    clear_cache = getattr(engine.embedder, "clear_cache", None)
    if clear_cache is not None:
        clear_cache()
    started = time.perf_counter()
    asked = engine.ask_detailed(item.question, top_k=k, mode=mode, answers=ANSWERS, distinct=distinct)
    latency = (time.perf_counter() - started) * 1000
    answer = asked.answer
    first = answer.citations[0] if answer.citations else None
    citations = [
        citation_record(c)
        | {
            "exact": is_verbatim(c, engine.index.documents[c.document_id]),
            "has_answer": metrics.contains_answer(c.quote, item.answers),
        }
        for c in answer.citations
    ]
    would_be = first.quote if first is not None else None
    contained = metrics.contains_answer(answer.answer, item.answers)
    covered = (
        answer.answer is not None
        and first is not None
        and covers_half(item, first.document_id, first.start, first.end, contained)
    )
    units = 0
    if answer.answer is not None and first is not None:
        passage = engine.passage(first.passage_id)
        units = sum(1 for u in passage.units if first.start <= u.start and u.end <= first.end)
    return ItemResult(
        item=item,
        answer=answer.answer,
        abstained=not answer.answerable,
        evidence=asked.evidence,
        confidence=answer.confidence,
        right=not item.unanswerable and metrics.contains_answer(would_be, item.answers),
        terms=asked.terms,
        reader=asked.reader,
        contained=contained,
        span_covered=covered,
        contained_top3=any(c["has_answer"] for c in citations[:3]),
        contained_answers3=any(metrics.contains_answer(a.answer, item.answers) for a in answer.answers[:ANSWERS]),
        exact_match=metrics.exact_match(answer.answer, item.answers),
        f1=metrics.token_f1(answer.answer, item.answers),
        answer_units=units,
        section=first.section if first else "",
        section_ok=(first is not None and first.section in item.sections) if item.sections else None,
        retrieved=tuple(h.passage.id for h in asked.hits[:RETRIEVAL_DEPTH]),
        relevant=relevant_ids(item, list(engine.index.live_passages())),
        citations=citations,
        latency_ms=latency,
    )


def _share(flags: Sequence[bool]) -> float:
    return metrics.mean([1.0 if f else 0.0 for f in flags])


def _median(values: Sequence[float]) -> float:
    """The 50th percentile, or 0.0 when there are no values (no question was answered)."""
    return metrics.percentile(values, 50) if values else 0.0


def aggregate(results: Sequence[ItemResult]) -> dict[str, float]:
    """The aggregate scores over item results (keys in the module docstring)."""
    answerable = [r for r in results if not r.item.unanswerable]
    all_citations = [c for r in results for c in r.citations]
    answered_citations = [c for r in answerable if not r.abstained for c in r.citations]
    abstention = metrics.abstention_scores([r.abstained for r in results], [r.item.unanswerable for r in results])
    latencies = [r.latency_ms for r in results] or [0.0]
    with_sections = [r.section_ok for r in answerable if r.section_ok is not None]
    answered = [r for r in results if r.answer is not None]
    out: dict[str, float] = {
        "n": len(results),
        "n_answerable": len(answerable),
        "containment": _share([r.contained for r in answerable]),
        "span_coverage": _share([r.span_covered for r in answerable]),
        "containment_top3": _share([r.contained_top3 for r in answerable]),
        "containment_answers3": _share([r.contained_answers3 for r in answerable]),
        "exact_match": metrics.mean([r.exact_match for r in answerable]),
        "f1": metrics.mean([r.f1 for r in answerable]),
        "median_answer_chars": _median([len(r.answer or "") for r in answered]),
        "median_answer_units": _median([r.answer_units for r in answered]),
        "section_accuracy": _share([bool(s) for s in with_sections]) if with_sections else 0.0,
        "quote_exactness": _share([c["exact"] for c in all_citations]) if all_citations else 1.0,
        "mrr@10": metrics.mean([metrics.reciprocal_rank(r.retrieved, r.relevant, 10) for r in answerable]),
        "ndcg@10": metrics.mean([metrics.ndcg_at_k(r.retrieved, r.relevant, 10) for r in answerable]),
        "citation_precision": _share([c["has_answer"] for c in answered_citations]),
        "citation_recall": _share([any(c["has_answer"] for c in r.citations) for r in answerable]),
        "abstention_precision": abstention.precision,
        "abstention_recall": abstention.recall,
        "abstention_f1": abstention.f1,
        "false_refusal_rate": abstention.false_refusal_rate,
        "latency_p50_ms": metrics.percentile(latencies, 50),
        "latency_p95_ms": metrics.percentile(latencies, 95),
        "latency_p99_ms": metrics.percentile(latencies, 99),
        "ece": metrics.calibration_error([r.evidence for r in results], [r.right for r in results]),
    }
    for k in (1, 5, 10):
        out[f"recall@{k}"] = metrics.mean([metrics.recall_at_k(r.retrieved, r.relevant, k) for r in answerable])
    return out


def check_questions(items: Sequence[GoldItem]) -> None:
    """Refuse a gold set with a question the service would refuse (empty, too long, control characters)
    before any is asked, rather than stop at it halfway through the set.

    Raises:
        CorpusError: Naming the first such item and what is wrong with its question.
    """
    for item in items:
        try:
            clean_question(item.question)
        except QueryError as exc:
            raise CorpusError(f"gold item {item.id!r}: {exc}") from exc


def evaluate(
    engine: Answerer,
    items: Sequence[GoldItem],
    *,
    mode: Mode = "hybrid",
    k: int = 3,
    distinct: Distinct = "quotes",
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Ask every gold question and score the answers.

    Args:
        engine: A loaded engine (``qa.engine.Engine``, or anything with what ``Answerer`` lists).
        items: Gold questions.
        mode: Retrieval mode to evaluate.
        k: Citations per answer.
        distinct: What makes the three answers of ``containment_answers3`` distinct (``Engine.ask``).
        progress: Called after each question with the number done.
    """
    check_questions(items)
    engine.ask_detailed(items[0].question if items else "warm up", mode=mode)  # warm caches before timing
    result = EvalResult(mode)
    for done, item in enumerate(items, 1):
        result.items.append(evaluate_item(engine, item, mode=mode, k=k, distinct=distinct))
        if progress:
            progress(done)
    result.aggregate = aggregate(result.items)
    return result


def calibrate(
    results: Sequence[ItemResult], *, max_false_refusal: float = 0.02
) -> tuple[float, metrics.AbstentionScores]:
    """The abstention threshold that maximises abstention F1 within the false-refusal budget."""
    answerable = [r.evidence for r in results if not r.item.unanswerable]
    unanswerable = [r.evidence for r in results if r.item.unanswerable]
    return metrics.best_threshold(answerable, unanswerable, max_false_refusal=max_false_refusal)
