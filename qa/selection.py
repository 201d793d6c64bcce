"""Choose the answer and its citations from scored candidates.

``qa.features`` describes the candidates, ``qa.scorer`` scores them; this
module orders them, reorders the retrieved passages by their best candidate,
and picks the citations: the answer's own candidate first, then the best
candidates outside the answer's span.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.features import Candidate
from qa.scorer import AnswerModel
from qa.types import Distinct, Hit, Passage, Span


@dataclass(frozen=True, slots=True)
class Scored:
    """A candidate with its ranking logit, its confidence were it the answer, the confidence's inputs and
    its feature row."""

    candidate: Candidate
    logit: float
    confidence: float
    inputs: npt.NDArray[np.float64]
    row: npt.NDArray[np.float32]


def rank(candidates: Sequence[Candidate], matrix: npt.NDArray[np.float32], model: AnswerModel) -> list[Scored]:
    """The candidates scored by ``model``, best first; ties go to the better-retrieved passage, then the
    earlier unit."""
    logits, inputs = model.logits(matrix), model.confidence_inputs(matrix)
    confidences = model.confidences(matrix)
    scored = [
        Scored(c, float(logits[i]), float(confidences[i]), inputs[i], matrix[i]) for i, c in enumerate(candidates)
    ]
    scored.sort(key=lambda s: (-s.logit, s.candidate.rank, s.candidate.unit.start))
    return scored


def reread(ranked: Sequence[Scored], reader: npt.NDArray[np.float32], model: AnswerModel) -> list[Scored]:
    """The first ranking with its ``len(reader)`` best candidates rescored by the reranker ``model``, which
    reads their features, their first logit less the best's and the cross-encoder's logit (``reader``, in
    the order of ``ranked``); the rest follow in their first order, with logit -inf (the two rankings'
    logits are not on one scale, so no answer joins one of them: ``answer_span``)."""
    count = len(reader)
    if not count:
        return list(ranked)
    top = ranked[:count]
    extra = np.stack([[s.logit - top[0].logit for s in top], reader.astype(np.float64)], axis=1)
    matrix = np.hstack([np.vstack([s.row for s in top]).astype(np.float64), extra]).astype(np.float32)
    rest = [dataclasses.replace(s, logit=-math.inf) for s in ranked[count:]]
    return rank([s.candidate for s in top], matrix, model) + rest


def rereads(confidence: npt.ArrayLike, below: float) -> npt.NDArray[np.bool_]:
    """Whether the cross-encoder rereads a question whose first answer has ``confidence``: only below the
    gate ``below`` (``QA_READER_BELOW``, fitted by ``fitting.fit.choose_gate``); a gate of 1 rereads every
    question. Element-wise over an array of confidences."""
    result: npt.NDArray[np.bool_] = np.logical_or(below >= 1, np.asarray(confidence) < below)
    return result


def rerank(hits: list[Hit], ranked: Sequence[Scored]) -> list[Hit]:
    """Hits ordered by their best candidate, then the hits no candidate was drawn from, in retrieval order.

    The candidate scores weigh sentence-level evidence that passage retrieval
    cannot see, so the passage holding the answer comes first.
    """
    order = {passage_id: i for i, passage_id in enumerate(dict.fromkeys(s.candidate.passage.id for s in ranked))}
    last = len(order)
    return sorted(hits, key=lambda hit: (order.get(hit.passage.id, last), hit.rank))


def answer_span(ranked: Sequence[Scored], margin: float) -> Span:
    """The answer's span: the best candidate's, joined to the second's when they are adjacent units of one
    passage and the second's logit is within ``margin`` of the best's (the answer may sit in either, or
    need both). The margin is fitted (``AnswerModel.merge_margin``, chosen by ``python -m fitting``).

    Raises:
        ValueError: If there is no candidate.
    """
    if not ranked:
        raise ValueError("no candidate to answer from")
    best = ranked[0].candidate
    if len(ranked) > 1:
        second = ranked[1].candidate
        adjacent = second.passage.id == best.passage.id and abs(second.position - best.position) == 1
        if adjacent and ranked[0].logit - ranked[1].logit <= margin:
            first, last = sorted((best, second), key=lambda c: c.position)
            return Span(first.unit.start, last.span.end)
    return best.span


def citable(ranked: Sequence[Scored], limit: int, margin: float) -> list[Scored]:
    """The best candidates, at most ``limit``: the answer first, then candidates outside the answer's span
    (``answer_span``)."""
    chosen = list(ranked[:1])
    if not chosen:
        return chosen
    answer: Span = answer_span(ranked, margin)
    doc_id = chosen[0].candidate.passage.doc_id
    for scored in ranked[1:]:
        if len(chosen) == limit:
            break
        unit = scored.candidate.unit
        inside = scored.candidate.passage.doc_id == doc_id and answer.start <= unit.start and unit.end <= answer.end
        if not inside:
            chosen.append(scored)
    return chosen


def alternatives(ranked: Sequence[Scored], count: int, margin: float, distinct: Distinct) -> list[Scored]:
    """Up to ``count`` more answers after the first (``ranked[0]``, joined as ``answer_span`` joins it), best
    first.

    ``distinct="quotes"``: the best candidates whose unit lies outside the first answer's span (the
    citations' rule, ``citable``) and whose text no earlier answer has; two answers may come from one
    passage, where the right sentence of a question most often is when the first is wrong.
    ``distinct="passages"``: the best candidate of each other passage, so the answers are distinct places in
    the documents, never neighbouring sentences of one.
    """
    if not ranked:
        return []
    if distinct == "passages":
        pool: Sequence[Scored] = ranked[1:]

        def key(scored: Scored) -> str:
            return scored.candidate.passage.id

        seen = {key(ranked[0])}
    else:
        pool = citable(ranked, len(ranked), margin)[1:]

        def key(scored: Scored) -> str:
            return _text(scored.candidate.passage, scored.candidate.unit)

        seen = {_text(ranked[0].candidate.passage, answer_span(ranked, margin))}
    found: list[Scored] = []
    for scored in pool:
        if len(found) >= count:
            break
        if key(scored) not in seen:
            seen.add(key(scored))
            found.append(scored)
    return found


def _text(passage: Passage, span: Span) -> str:
    """The text of ``span`` (document offsets) within ``passage``."""
    return passage.text[span.start - passage.start : span.end - passage.start]
