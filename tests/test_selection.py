"""Tests for ``qa.selection``: ranking candidates with a model, reranking hits, choosing citations."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from qa.features import COLUMN, FEATURES, Candidate
from qa.scorer import READER_FEATURES, AnswerModel
from qa.selection import Scored, alternatives, citable, rank, rerank, reread
from qa.types import Hit, Passage, Span

TEXT = "Alpha is first. Beta is second. Gamma is third."
UNITS = (Span(0, 15), Span(16, 31), Span(32, 47))
N = len(FEATURES)


def passage(pid: str, doc_id: str = "doc.txt") -> Passage:
    return Passage(pid, doc_id, ("Section",), 0, len(TEXT), TEXT, units=UNITS)


def candidate(p: Passage, unit: int, rank: int = 0, span: Span | None = None) -> Candidate:
    return Candidate(p, p.units[unit], span or p.units[unit], rank, unit)


def similarity_model(confidence_weight: float = 0.0) -> AnswerModel:
    """A model whose logit is the similarity column alone, unstandardised; its confidence reads the margin."""
    rank_weights = np.zeros(N)
    rank_weights[COLUMN["similarity"]] = 1.0
    confidence_weights = np.zeros(N + 2)
    confidence_weights[-1] = confidence_weight  # margin
    return AnswerModel(
        model="test", features=FEATURES, mean=np.zeros(N), scale=np.ones(N), rank_weights=rank_weights,
        confidence_mean=np.zeros(N + 2), confidence_scale=np.ones(N + 2), confidence_weights=confidence_weights,
        confidence_bias=0.0, card={},
    )  # fmt: skip


def rows(similarities: list[float]) -> npt.NDArray[np.float32]:
    matrix = np.zeros((len(similarities), N), dtype=np.float32)
    matrix[:, COLUMN["similarity"]] = similarities
    return matrix


def scored(c: Candidate, logit: float) -> Scored:
    return Scored(c, logit, 0.5, np.zeros(N + 2), np.zeros(N, dtype=np.float32))


# --- rank -------------------------------------------------------------------------------------------


def test_rank_orders_by_logit_then_passage_rank_then_unit_start() -> None:
    """Best logit first; a tie goes to the better-retrieved passage, then to the earlier unit."""
    a, b = passage("a"), passage("b")
    candidates = [candidate(a, 2), candidate(b, 0, rank=1), candidate(a, 1), candidate(b, 1, rank=1), candidate(a, 0)]
    ranked = rank(candidates, rows([0.5, 0.9, 0.9, 0.2, 0.5]), similarity_model())
    assert [(s.candidate.passage.id, s.candidate.unit.start) for s in ranked] == [
        ("a", 16), ("b", 0), ("a", 0), ("a", 32), ("b", 16),
    ]  # fmt: skip
    assert [s.logit for s in ranked] == pytest.approx([0.9, 0.9, 0.5, 0.5, 0.2])


def test_rank_gives_each_candidate_its_confidence_and_inputs() -> None:
    """A candidate's inputs end with its softmax share and margin; its confidence is the logistic of their terms."""
    a = passage("a")
    ranked = rank([candidate(a, 0), candidate(a, 1)], rows([0.0, 1.0]), similarity_model(confidence_weight=2.0))
    best, other = ranked
    share = 1 / (1 + np.exp(-1.0))
    assert best.inputs[-2:].tolist() == pytest.approx([share, 1.0])  # margin over the runner-up
    assert other.inputs[-2:].tolist() == pytest.approx([1 - share, -1.0])  # margin under the best
    assert best.confidence == round(1 / (1 + np.exp(-2.0)), 4)
    assert other.confidence == round(1 / (1 + np.exp(2.0)), 4)


def test_rank_of_no_candidates_is_empty() -> None:
    """No candidates, no ranking."""
    assert rank([], rows([]), similarity_model()) == []


# --- rerank -----------------------------------------------------------------------------------------


def test_rerank_orders_hits_by_their_best_candidate_then_by_retrieval_rank() -> None:
    """Hits with candidates come in the order of their best candidate; the rest keep retrieval order."""
    a, b, c, d = (passage(pid) for pid in "abcd")
    hits = [Hit(a, 0.9, 0), Hit(b, 0.8, 1), Hit(c, 0.7, 2), Hit(d, 0.6, 3)]
    ranked = [scored(candidate(c, 0, rank=2), 3.0), scored(candidate(a, 1), 2.0), scored(candidate(c, 2, rank=2), 1.0)]
    assert [h.passage.id for h in rerank(hits, ranked)] == ["c", "a", "b", "d"]
    assert rerank(hits, []) == hits
    assert rerank([], ranked) == []


def test_rerank_keeps_retrieval_order_among_hits_without_candidates() -> None:
    """Hits no candidate was drawn from follow, by rank, even when given out of order."""
    a, b, c = (passage(pid) for pid in "abc")
    hits = [Hit(c, 0.7, 2), Hit(a, 0.9, 0), Hit(b, 0.8, 1)]
    assert [h.passage.id for h in rerank(hits, [scored(candidate(b, 0, rank=1), 1.0)])] == ["b", "a", "c"]


# --- citable ----------------------------------------------------------------------------------------


def test_citable_puts_the_answer_first_and_skips_units_inside_its_span() -> None:
    """Units inside the answer's span (run on over a lead-in) are not cited again."""
    p = passage("p")
    answer = candidate(p, 0, span=Span(0, 31))
    ranked = [scored(answer, 3.0), scored(candidate(p, 1), 2.0), scored(candidate(p, 2), 1.0)]
    assert [s.candidate.unit for s in citable(ranked, 3, 0.0)] == [Span(0, 15), Span(32, 47)]


def test_citable_respects_the_limit() -> None:
    """At most ``limit`` citations, best first."""
    p = passage("p")
    ranked = [scored(candidate(p, 0), 3.0), scored(candidate(p, 1), 2.0), scored(candidate(p, 2), 1.0)]
    assert [s.candidate.unit for s in citable(ranked, 2, 0.0)] == [Span(0, 15), Span(16, 31)]
    assert [s.candidate.unit for s in citable(ranked, 1, 0.0)] == [Span(0, 15)]
    assert citable([], 3, 0.0) == []


def test_citable_does_not_skip_the_same_offsets_in_another_document() -> None:
    """Offsets are per document: a unit at the answer's offsets in another document is cited."""
    mine, theirs = passage("p", "one.txt"), passage("q", "two.txt")
    answer = candidate(mine, 0, span=Span(0, 31))
    ranked = [scored(answer, 3.0), scored(candidate(mine, 1), 2.0), scored(candidate(theirs, 1), 1.0)]
    chosen = citable(ranked, 3, 0.0)
    assert [(s.candidate.passage.doc_id, s.candidate.unit) for s in chosen] == [
        ("one.txt", Span(0, 15)), ("two.txt", Span(16, 31)),
    ]  # fmt: skip


def test_citable_skips_units_inside_the_answer_from_another_passage_of_its_document() -> None:
    """The same document's overlapping passage holds the same text: its units inside the answer are skipped."""
    first, overlapping = passage("p"), passage("p2")
    answer = candidate(first, 0, span=Span(0, 31))
    ranked = [scored(answer, 3.0), scored(candidate(overlapping, 1), 2.0), scored(candidate(overlapping, 2), 1.0)]
    assert [(s.candidate.passage.id, s.candidate.unit) for s in citable(ranked, 3, 0.0)] == [
        ("p", Span(0, 15)), ("p2", Span(32, 47)),
    ]  # fmt: skip


# --- alternatives (answers=n) -----------------------------------------------------------------------


def test_distinct_quotes_may_share_the_answers_passage_but_never_repeat_or_nest() -> None:
    """By quote: the best candidates outside the first answer's span, skipping a text an earlier answer has
    (the same sentence in another document), in ranking order, at most ``count``."""
    mine, theirs = passage("p", "one.txt"), passage("q", "two.txt")
    answer = candidate(mine, 0, span=Span(0, 31))  # runs on over "Beta is second."
    ranked = [
        scored(answer, 5.0),
        scored(candidate(mine, 1), 4.0),  # inside the answer's span
        scored(candidate(theirs, 2), 3.0),
        scored(candidate(mine, 2), 2.0),  # "Gamma is third." again, from the other document
        scored(candidate(theirs, 0), 1.0),
        scored(candidate(theirs, 1), 0.5),
    ]
    got = alternatives(ranked, 2, 0.0, "quotes")
    assert [(s.candidate.passage.id, s.candidate.unit) for s in got] == [("q", Span(32, 47)), ("q", Span(0, 15))]
    assert alternatives(ranked, 1, 0.0, "quotes") == got[:1]
    assert alternatives(ranked, 0, 0.0, "quotes") == [] == alternatives([], 2, 0.0, "quotes")


def test_distinct_quotes_skip_the_second_unit_when_the_answer_joins_it() -> None:
    """When the answer joins two adjacent units (within the merge margin), neither is another answer."""
    p = passage("p")
    ranked = [scored(candidate(p, 1), 2.0), scored(candidate(p, 0), 1.9), scored(candidate(p, 2), 1.0)]
    assert [s.candidate.unit for s in alternatives(ranked, 2, 0.5, "quotes")] == [Span(32, 47)]
    assert [s.candidate.unit for s in alternatives(ranked, 2, 0.0, "quotes")] == [Span(0, 15), Span(32, 47)]


def test_distinct_passages_give_the_best_candidate_of_each_other_passage() -> None:
    """By passage: the first answer's passage gives no other answer; each other passage gives its best."""
    a, b, c = passage("a"), passage("b"), passage("c")
    ranked = [
        scored(candidate(a, 0), 5.0),
        scored(candidate(a, 1), 4.0),
        scored(candidate(b, 2), 3.0),
        scored(candidate(b, 0), 2.0),
        scored(candidate(c, 1), 1.0),
    ]
    got = alternatives(ranked, 5, 0.0, "passages")
    assert [(s.candidate.passage.id, s.candidate.unit) for s in got] == [("b", Span(32, 47)), ("c", Span(16, 31))]
    assert len(alternatives(ranked, 1, 0.0, "passages")) == 1


# --- reread -----------------------------------------------------------------------------------------


def reader_model() -> AnswerModel:
    """A reranker whose logit is the cross-encoder's column alone (FEATURES + READER_FEATURES)."""
    width = N + len(READER_FEATURES)
    rank_weights = np.zeros(width)
    rank_weights[-1] = 1.0
    return AnswerModel(
        model="test", features=(*FEATURES, *READER_FEATURES), mean=np.zeros(width), scale=np.ones(width),
        rank_weights=rank_weights, confidence_mean=np.zeros(width + 2), confidence_scale=np.ones(width + 2),
        confidence_weights=np.zeros(width + 2), confidence_bias=0.0, card={}, reread=2,
    )  # fmt: skip


def test_reread_rescores_only_the_best_candidates_and_keeps_the_rest_in_order() -> None:
    """The cross-encoder's scores reorder the first ranking's best ``len(scores)`` candidates; the others
    follow as the first ranking left them, with logit -inf (never joined to the answer)."""
    a = passage("a")
    first = rank([candidate(a, 0), candidate(a, 1), candidate(a, 2)], rows([0.9, 0.5, 0.1]), similarity_model())
    reread_ = reread(first, np.array([0.0, 3.0], dtype=np.float32), reader_model())
    assert [s.candidate.unit.start for s in reread_] == [16, 0, 32]
    assert [s.logit for s in reread_] == pytest.approx([3.0, 0.0, -math.inf])
    # The reranker saw each candidate's first logit less the best's, then the cross-encoder's logit.
    assert reread_[0].row[-2:].tolist() == pytest.approx([0.5 - 0.9, 3.0])
    assert reread_[1].row[-2:].tolist() == pytest.approx([0.0, 0.0])


def test_reread_of_no_candidate_is_the_first_ranking() -> None:
    a = passage("a")
    first = rank([candidate(a, 0), candidate(a, 1)], rows([0.2, 0.7]), similarity_model())
    assert reread(first, np.zeros(0, dtype=np.float32), reader_model()) == first


def test_only_questions_below_the_gate_are_reread_and_a_gate_of_one_rereads_all() -> None:
    """``rereads`` is the one rule the engine and the fit share: below the gate, reread; at or above it,
    not; a gate of 1 rereads every question, a confidence of 1 included."""
    from qa.selection import rereads

    assert [bool(rereads(c, 0.5)) for c in (0.0, 0.4999, 0.5, 0.9)] == [True, True, False, False]
    assert rereads(np.array([0.2, 0.5, 1.0]), 0.5).tolist() == [True, False, False]
    assert rereads(np.array([0.2, 0.5, 1.0]), 1.0).tolist() == [True, True, True]
    assert not rereads(np.array([0.0, 1.0]), 0.0).any()
