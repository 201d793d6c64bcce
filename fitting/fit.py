"""Fit the answer scorer and measure it with each data set left out in turn.

The scorer (``qa.scorer``) has two linear parts, both fitted by Newton's
method with an L2 penalty (deterministic: no random start, no shuffling):
the ranker, a conditional logit over each answerable question's candidates
(the target spread evenly over the candidates that hold the answer), and the
confidence, a logistic regression over each question's best candidate
(``AnswerModel.confidence_inputs``) whose target is "the best candidate
holds the answer", 0 for every unanswerable question. A set of n questions
weighs as min(n, SET_WEIGHT_CAP) questions, so no set outweighs the others by
size alone; a near miss weighs NEAR_MISS_WEIGHT of a question in the confidence,
and a set in CONFIDENCE_SET_WEIGHT (PolicyQA, whose labels count many right
answers wrong) that share of its weight there.

``leave_one_out`` fits on five sets and measures on the sixth, for each set;
the same figures are computed for the hand-set weights the scorer replaced
(``baseline_logits``), on the same candidates, so the two columns differ only
in how candidates are scored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fitting.tables import Table
from qa.features import COLUMN, FEATURES
from qa.metrics import calibration_error
from qa.scorer import HARD_RULES, READER_FEATURES, AnswerModel
from qa.selection import rereads

# L2 penalty on the standardised weights, per unit of total sample weight.
PENALTY = 1e-3
NEWTON_STEPS = 50


@dataclass(frozen=True, slots=True)
class Figures:
    """What one scoring of one set gives (shares over the set's questions)."""

    picked: float
    containment: float
    containment_top3: float
    abstention_recall: float
    near_miss_refusals: float
    false_refusals: float
    ece: float
    n: int
    n_unanswerable: int
    # The genuine questions' confidences, which ``ece`` scores (``qa.metrics.calibration_floor`` reads them).
    confidences: tuple[float, ...] = field(default=(), compare=False, repr=False)

    def row(self) -> list[str]:
        values = (self.picked, self.containment, self.containment_top3, self.abstention_recall,
                  self.near_miss_refusals, self.false_refusals, self.ece)  # fmt: skip
        return [f"{v:.3f}" for v in values]


def logistic(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    return out


def newton(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], w: npt.NDArray[np.float64], penalty: float,
    *, free: bool = True,
) -> npt.NDArray[np.float64]:  # fmt: skip
    """Weighted L2-penalised logistic regression; when ``free``, ``x``'s last column is an unpenalised bias."""
    beta = np.zeros(x.shape[1])
    ridge = penalty * w.sum() * np.ones(x.shape[1])
    if free:
        ridge[-1] = 0.0
    for _ in range(NEWTON_STEPS):
        p = logistic(x @ beta)
        gradient = x.T @ (w * (p - y)) + ridge * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(ridge) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


# A set of n questions weighs as min(n, SET_WEIGHT_CAP) questions: no set outweighs the rest by size alone.
SET_WEIGHT_CAP = 800


# A near miss weighs this much of a question in the confidence's fit: enough to learn what a missing
# answer looks like, little enough that the confidence stays calibrated on the questions users ask.
NEAR_MISS_WEIGHT = 0.25

# A set whose labels say less than the others whether a quote answers weighs this share of its questions in
# the confidence's fit (the ranker's and the thresholds' weights are unchanged). PolicyQA's questions are
# generic ("Do you share my data with third parties?") and its gold answers spans of a few words, so many
# sentences its labels count wrong answer the question too (why it gives the cross-encoder no training
# pairs, ``fitting.reader.TRAINED_ON``); at full weight those false "wrong" labels pulled every set's
# confidence down (docs/fitting.md, "Calibration and its floor", for the weights tried).
CONFIDENCE_SET_WEIGHT = {"policyqa": 0.25}


def question_weight(table: Table) -> float:
    """The weight of each of a table's questions in a fit."""
    return min(table.n_questions, SET_WEIGHT_CAP) / max(1, table.n_questions)


def _weights(tables: Sequence[Table]) -> npt.NDArray[np.float64]:
    return np.concatenate([np.full(len(t.label), question_weight(t)) for t in tables])


def best_rows(table: Table, logits: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Each question's best candidate row (-1 when it has none); ties go to the earlier candidate."""
    best = np.full(table.n_questions, -1, dtype=np.int64)
    order = np.lexsort((np.arange(len(logits)), -logits, table.question))
    firsts = order[np.r_[True, table.question[order][1:] != table.question[order][:-1]]] if len(order) else order
    best[table.question[firsts]] = firsts
    return best


def top_k_contained(table: Table, logits: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.bool_]:
    """Whether any of each question's ``k`` best candidates contains a gold answer."""
    out = np.zeros(table.n_questions, dtype=bool)
    order = np.lexsort((np.arange(len(logits)), -logits, table.question))
    seen = np.zeros(table.n_questions, dtype=np.int64)
    for row in order:
        q = table.question[row]
        if seen[q] < k:
            seen[q] += 1
            out[q] |= bool(table.contained[row])
    return out


def question_outcomes(
    table: Table, logits: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each question's best logit (-inf without candidates) and whether its best candidate holds an answer."""
    best = best_rows(table, logits)
    has = best >= 0
    top = np.where(has, logits[np.maximum(best, 0)], -np.inf)
    right = np.where(has, table.contained[np.maximum(best, 0)], 0).astype(np.float64)
    return top, right


def figures(table: Table, confidence: npt.NDArray[np.float64], right: npt.NDArray[np.float64],
            top3: npt.NDArray[np.bool_], threshold: float,
            hard: npt.NDArray[np.bool_] | None = None) -> Figures:  # fmt: skip
    """The set's figures for per-question confidence and rightness of the best candidate; ``hard`` marks
    the questions a hard rule refuses whatever their confidence."""
    near = table.near_miss.astype(bool)
    unanswerable = table.unanswerable.astype(bool) & ~near
    answerable = ~table.unanswerable.astype(bool)
    genuine = ~near
    refused = (confidence < threshold) | (hard if hard is not None else False)
    answered_right = (right > 0) & ~refused
    kept = confidence[genuine].tolist()
    return Figures(
        picked=float((right > 0)[answerable].mean()) if answerable.any() else 0.0,
        containment=float(answered_right[answerable].mean()) if answerable.any() else 0.0,
        containment_top3=float(top3[answerable].mean()) if answerable.any() else 0.0,
        abstention_recall=float(refused[unanswerable].mean()) if unanswerable.any() else float("nan"),
        near_miss_refusals=float(refused[near].mean()) if near.any() else float("nan"),
        false_refusals=float(refused[answerable].mean()) if answerable.any() else 0.0,
        ece=calibration_error(kept, (right[genuine] > 0).tolist()),
        n=int(genuine.sum()),
        n_unanswerable=int(unanswerable.sum()),
        confidences=tuple(kept),
    )


# Signs the weights must have, so that more evidence for an answer never lowers it (the scorer's tests
# check them): a feature whose fitted weight has the wrong sign is dropped (weight 0) and the rest refitted.
RANK_SIGNS = {"ranking": 1, "reader": 1, "similarity": 1, "window": 1, "coverage": 1, "context_coverage": 1,
              "type_found": 1, "type_missing": -1, "attribute_found": 1, "attribute_missing": -1}  # fmt: skip
CONFIDENCE_SIGNS = {"reader": 1, "similarity": 1, "context_coverage": 1, "type_missing": -1,
                    "attribute_missing": -1, "missing_weight": -1, "dated_elsewhere": -1,
                    "unknown_names": -1}  # fmt: skip


def signed_fit(
    columns: Sequence[int], signs: dict[str, int], solve: Callable[[list[int]], npt.NDArray[np.float64]],
    names: Sequence[str] = FEATURES,
) -> npt.NDArray[np.float64]:  # fmt: skip
    """Weights over ``columns`` (indexes into ``names``, or past its end for extra inputs) from ``solve``,
    with the weights that ``signs`` constrains dropped, worst first, until every one has its sign."""
    cols = list(columns)
    width = max(len(names), max(cols) + 1)
    while True:
        beta = solve(cols)
        wrong = [(-signs[names[c]] * b, c) for c, b in zip(cols, beta, strict=True)
                 if c < len(names) and names[c] in signs and signs[names[c]] * b < 0]  # fmt: skip
        if not wrong:
            weights = np.zeros(width)
            weights[cols] = beta
            return weights
        cols.remove(max(wrong)[1])


def question_slices(table: Table) -> list[slice]:
    """The rows of each question (a table's rows are grouped by question, in order)."""
    bounds = np.searchsorted(table.question, np.arange(table.n_questions + 1))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def conditional_logit(
    x: npt.NDArray[np.float64], target: npt.NDArray[np.float64], groups: list[slice],
    group_weight: npt.NDArray[np.float64], penalty: float,
) -> npt.NDArray[np.float64]:  # fmt: skip
    """Weights of a softmax over each group's rows, fitted to ``target`` (each group's target sums to 1)."""
    starts = np.array([g.start for g in groups])
    row_weight = np.repeat(group_weight, [g.stop - g.start for g in groups])
    ridge = penalty * group_weight.sum()

    def probabilities(beta: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], float]:
        z = x @ beta
        p = np.empty_like(z)
        loss = 0.5 * ridge * float(beta @ beta)
        for g, weight in zip(groups, group_weight, strict=True):
            shifted = z[g] - z[g].max()
            log_total = np.log(np.exp(shifted).sum())
            p[g] = np.exp(shifted - log_total)
            loss -= weight * float(target[g] @ (shifted - log_total))
        return p, loss

    beta = np.zeros(x.shape[1])
    p, loss = probabilities(beta)
    for _ in range(NEWTON_STEPS):
        gradient = x.T @ (row_weight * (p - target)) + ridge * beta
        expected = np.add.reduceat(x * p[:, None], starts, axis=0)
        hessian = (x * (row_weight * p)[:, None]).T @ x - (expected * group_weight[:, None]).T @ expected
        step = np.linalg.solve(hessian + (ridge + 1e-9) * np.eye(len(beta)), gradient)
        size = 1.0
        while size > 1e-6:  # damped: halve the step until the loss falls
            p_new, loss_new = probabilities(beta - size * step)
            if loss_new <= loss:
                break
            size /= 2
        beta, p, loss_old, loss = beta - size * step, p_new, loss, loss_new
        if loss_old - loss < 1e-12:
            break
    return beta


def _best_inputs(
    model: AnswerModel, table: Table, margin: float | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Per question: the best candidate's confidence inputs, whether the answer (``qa.selection.answer_span``
    with ``margin``, the model's when None) holds a gold answer, the best candidate's row (-1 without
    one), and whether any of the three best holds an answer."""
    margin = model.merge_margin if margin is None else margin
    logits = model.logits(table.features)
    best = best_rows(table, logits)
    inputs = np.zeros((table.n_questions, len(model.features) + 2))
    for q, rows in enumerate(question_slices(table)):
        if best[q] >= 0:  # the softmax share and margin need the question's other candidates
            inputs[q] = model.confidence_inputs(table.features[rows])[best[q] - rows.start]
    single, joined, gap = _top_two(logits, table)
    return inputs, np.where(gap <= margin, joined, single), best, top_k_contained(table, logits, 3)


# The share of answers that may be two joined units: the margin is the one that answers most questions
# right on the fit's sets with at most this many answers joined.
MAX_JOINED = 0.15
MARGINS = tuple(step / 20 for step in range(21))


def _top_two(logits_all: npt.NDArray[np.float64], table: Table) -> tuple[npt.NDArray[np.float64], ...]:
    """Per question, for candidate scores ``logits_all``: whether its best candidate holds an answer, whether
    the best two joined do (0 unless adjacent), and the score gap between them (inf unless adjacent)."""
    single = np.zeros(table.n_questions)
    joined = np.zeros(table.n_questions)
    gap = np.full(table.n_questions, np.inf)
    for q, rows in enumerate(question_slices(table)):
        if rows.stop == rows.start:
            continue
        logits = logits_all[rows]
        order = np.lexsort((np.arange(len(logits)), -logits))
        best = order[0]
        single[q] = table.contained[rows][best]
        if len(order) > 1:
            second = order[1]
            hit, position = table.hit[rows], table.position[rows]
            if hit[best] == hit[second] and abs(int(position[best]) - int(position[second])) == 1:
                joined[q] = table.pair_contained[rows][min(best, second, key=lambda r: int(position[r]))]
                gap[q] = logits[best] - logits[second]
    return single, joined, gap


def choose_margin(model: AnswerModel, tables: Sequence[Table]) -> float:
    """The merge margin (of MARGINS) that answers most questions right, each set weighing as in the fit,
    with at most MAX_JOINED of the answers joined."""
    outcomes = [
        (_top_two(model.logits(t.features), t), question_weight(t), ~t.unanswerable.astype(bool)) for t in tables
    ]
    best, best_score = 0.0, -1.0
    for margin in MARGINS:
        score = joined_share = total = 0.0
        for (single, joined, gap), weight, answerable in outcomes:
            merged = gap <= margin
            right = np.where(merged, joined, single)
            score += weight * float(right[answerable].sum())
            joined_share += weight * float(merged[answerable].sum())
            total += weight * float(answerable.sum())
        if total and score / total > best_score and joined_share / total <= MAX_JOINED:
            best, best_score = margin, score / total
    return best


def fit(
    tables: Sequence[Table], *, model: str, columns: Sequence[int] | None = None, card: dict[str, Any] | None = None,
    names: tuple[str, ...] = FEATURES, confidence_columns: Sequence[int] | None = None,
) -> AnswerModel:  # fmt: skip
    """Fit the scorer on ``tables``, whose columns are ``names``: the ranker on all of them or only ``columns``
    (the rest get weight 0), the confidence on the same or on ``confidence_columns``."""
    keep = list(range(len(names))) if columns is None else list(columns)
    confident = keep if confidence_columns is None else list(confidence_columns)
    x_all = np.concatenate([t.features for t in tables]).astype(np.float64)
    w = _weights(tables)
    mean = np.average(x_all, axis=0, weights=w)
    scale = np.sqrt(np.average((x_all - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-9, scale, 1.0)
    # The ranker: answerable questions with at least one candidate holding the answer.
    parts, targets, groups, group_weights, offset = [], [], [], [], 0
    for t in tables:
        for q, rows in enumerate(question_slices(t)):
            labels = t.label[rows].astype(np.float64)
            if t.unanswerable[q] or labels.sum() == 0:
                continue
            parts.append(t.features[rows])
            targets.append(labels / labels.sum())
            groups.append(slice(offset, offset + len(labels)))
            group_weights.append(question_weight(t))
            offset += len(labels)
    standard = (np.concatenate(parts).astype(np.float64) - mean) / scale
    target, group_weight = np.concatenate(targets), np.asarray(group_weights)
    rank_weights = signed_fit(
        keep,
        RANK_SIGNS,
        lambda cols: conditional_logit(standard[:, cols], target, groups, group_weight, PENALTY),
        names,
    )
    width = len(names) + 2
    ranker = AnswerModel(model, names, mean, scale, rank_weights, np.zeros(width), np.ones(width),
                         np.zeros(width), 0.0, {})  # fmt: skip
    ranker = dataclasses.replace(ranker, merge_margin=choose_margin(ranker, tables))
    # The confidence: every question's best candidate, standardised over the best candidates.
    inputs, rights, weights = [], [], []
    for t in tables:
        best_inputs, right, best, _ = _best_inputs(ranker, t)
        has = best >= 0
        inputs.append(best_inputs[has])
        rights.append(right[has])
        weight = question_weight(t) * CONFIDENCE_SET_WEIGHT.get(t.name, 1.0)
        weights.append((weight * np.where(t.near_miss, NEAR_MISS_WEIGHT, 1.0))[has])
    x, y, qw = np.concatenate(inputs), np.concatenate(rights), np.concatenate(weights)
    confidence_mean = np.average(x, axis=0, weights=qw)
    confidence_scale = np.sqrt(np.average((x - confidence_mean) ** 2, axis=0, weights=qw))
    confidence_scale = np.where(confidence_scale > 1e-9, confidence_scale, 1.0)
    x = (x - confidence_mean) / confidence_scale
    used = [*confident, len(names), len(names) + 1]
    with_bias = np.hstack([x, np.ones((len(y), 1))])
    full = signed_fit(
        [*used, width],
        CONFIDENCE_SIGNS,
        lambda cols: newton(with_bias[:, cols], y, qw, PENALTY, free=cols[-1] == width),
        names,
    )
    return AnswerModel(model, names, mean, scale, rank_weights, confidence_mean, confidence_scale,
                       full[:width], float(full[width]), card or {}, ranker.merge_margin)  # fmt: skip


def confidences_of(
    model: AnswerModel, table: Table, rules: Sequence[str] = tuple(HARD_RULES)
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per question: the confidence of its best candidate (0 without one), whether that candidate holds an
    answer, whether any of the three best does, and whether one of the hard ``rules`` refuses it."""
    inputs, right, best, top3 = _best_inputs(model, table)
    z = inputs @ model.confidence_weights + model.confidence_bias
    confidence = np.where(best >= 0, np.round(logistic(z), 4), 0.0)
    hard = np.zeros(table.n_questions, dtype=bool)
    for q, row in enumerate(best):
        hard[q] = row >= 0 and any(table.features[row, COLUMN[name]] > 0 for name in rules)
    return confidence, right, top3, hard


def model_figures(
    model: AnswerModel, table: Table, threshold: float, *, rules: Sequence[str] = tuple(HARD_RULES)
) -> Figures:
    """The fitted scorer's figures on one table, with the hard ``rules`` (``qa.scorer.HARD_RULES``)."""
    confidence, right, top3, hard = confidences_of(model, table, rules)
    return figures(table, confidence, right, top3, threshold, hard)


# The share of right answers a threshold may withhold, over the sets it is chosen on.
MAX_RIGHT_LOST = 0.03


def choose_threshold(model: AnswerModel, tables: Sequence[Table]) -> float:
    """The highest threshold (in steps of 0.01) that withholds at most MAX_RIGHT_LOST of the right answers
    of ``tables`` (each set weighing as in the fit): it refuses the most near misses and unanswerable
    questions that this budget allows."""
    outcomes = [(confidences_of(model, t), question_weight(t), t) for t in tables]
    best = 0.0
    for step in range(1, 100):
        threshold = step / 100
        lost = total = 0.0
        for (confidence, right, _, _), weight, t in outcomes:
            rights = (right > 0) & ~t.unanswerable.astype(bool)
            lost += weight * float((rights & (confidence < threshold)).sum())
            total += weight * float(rights.sum())
        if total and lost / total > MAX_RIGHT_LOST:
            break
        best = threshold
    return best


# The hand-set weights the scorer replaced, over the columns that carry the same signals, and their
# confidence line (logistic(4.22 * evidence - 1.92)); evidence subtracts 1 per failed hard check and
# 0.15 for a missing answer type. Refused below evidence 0.45.
BASELINE_WEIGHTS = {"similarity": 0.45, "window": 0.20, "context_coverage": 0.35, "passage_similarity": 0.15,
                    "neighbour_coverage": 0.10, "fused_rank": 0.05, "type_found": 0.10, "heading": 0.10}  # fmt: skip
BASELINE_PENALTIES = {"unknown_names": 1.0, "dated_elsewhere": 1.0, "type_missing": 0.15}
BASELINE_MIN_EVIDENCE = 0.45
# ... and its rule for quoting two adjacent units: scores within 0.05.
BASELINE_MERGE_MARGIN = 0.05


def baseline_logits(table: Table) -> npt.NDArray[np.float64]:
    """The hand-set score of each candidate (the old ranking)."""
    x = table.features.astype(np.float64)
    return sum((w * x[:, COLUMN[name]] for name, w in BASELINE_WEIGHTS.items()), np.zeros(len(x)))


def baseline_figures(table: Table) -> Figures:
    """The hand-set weights' figures on one table, refusing as they did (evidence below 0.45)."""
    scores = baseline_logits(table)
    x = table.features.astype(np.float64)
    penalty = sum((w * x[:, COLUMN[name]] for name, w in BASELINE_PENALTIES.items()), np.zeros(len(x)))
    top, _ = question_outcomes(table, scores)
    single, joined, gap = _top_two(scores, table)
    right = np.where(gap <= BASELINE_MERGE_MARGIN, joined, single)
    best = best_rows(table, scores)
    evidence = np.where(best >= 0, top - penalty[np.maximum(best, 0)], -np.inf)
    confidence = np.where(np.isfinite(evidence), logistic(4.22 * evidence - 1.92), 0.0)
    return figures(
        table,
        confidence,
        right,
        top_k_contained(table, scores, 3),
        logistic(np.array(4.22 * BASELINE_MIN_EVIDENCE - 1.92)).item(),
    )


def leave_one_out(
    tables: Sequence[Table], *, model: str, threshold: float | None = None, columns: Sequence[int] | None = None,
    rules: Sequence[str] = tuple(HARD_RULES), names: tuple[str, ...] = FEATURES,
) -> dict[str, Figures]:  # fmt: skip
    """For each table, the figures of a scorer fitted on all the others (``fit``'s ``columns`` of the tables'
    ``names``); the threshold is ``threshold``, or when None, ``choose_threshold`` on the other tables."""
    out = {}
    for i, held in enumerate(tables):
        rest = [t for j, t in enumerate(tables) if j != i]
        fitted = fit(rest, model=model, columns=columns, names=names)
        chosen = choose_threshold(fitted, rest) if threshold is None else threshold
        out[held.name] = model_figures(fitted, held, chosen, rules=rules)
    return out


def reread_table(table: Table, first: AnswerModel, count: int) -> Table:
    """What the reranker sees of ``table``: each question's ``count`` best candidates by the first ranker
    ``first``, in their table order, with READER_FEATURES appended (``qa.selection.reread`` at run time).

    Raises:
        ValueError: If the table has no cross-encoder scores (run ``python -m fitting.reader``).
    """
    if table.reader is None:
        raise ValueError(f"{table.name}: no cross-encoder scores in the table; run python -m fitting.reader")
    logits = first.logits(table.features)
    rows: list[int] = []
    ranking = np.zeros(len(logits))
    for rows_of in question_slices(table):
        if rows_of.stop == rows_of.start:
            continue
        local = logits[rows_of]
        order = np.lexsort((np.arange(len(local)), -local))[:count]
        rows.extend(sorted(int(r) + rows_of.start for r in order))
        ranking[rows_of] = local - local.max()
    kept = np.asarray(rows, dtype=np.int64)
    if np.isnan(table.reader[kept]).any():
        raise ValueError(
            f"{table.name}: a candidate to reread has no cross-encoder score; rerun python -m fitting.reader"
        )
    extra = np.stack([ranking[kept], table.reader[kept].astype(np.float64)], axis=1)
    return dataclasses.replace(
        table, features=np.hstack([table.features[kept], extra]).astype(np.float32), question=table.question[kept],
        label=table.label[kept], contained=table.contained[kept], pair_contained=table.pair_contained[kept],
        position=table.position[kept], hit=table.hit[kept], reader=table.reader[kept],
        half=None if table.half is None else table.half[kept],
        pair_half=None if table.pair_half is None else table.pair_half[kept],
    )  # fmt: skip


def by_half(table: Table) -> Table | None:
    """``table`` with an answer counted right when it covers half a gold span (``fitting.tables``' ``half``
    columns) instead of holding a whole gold answer; None when the table has no such columns or they say
    nothing more (no gold offsets: the same as containment)."""
    if table.half is None or table.pair_half is None:
        return None
    if np.array_equal(table.half, table.contained) and np.array_equal(table.pair_half, table.pair_contained):
        return None
    return dataclasses.replace(table, contained=table.half, pair_contained=table.pair_half)


def fit_reranker(tables: Sequence[Table], *, model: str, count: int, first: AnswerModel | None = None,
                 card: dict[str, Any] | None = None) -> tuple[AnswerModel, AnswerModel]:  # fmt: skip
    """The first ranker (``first``, or fitted on ``tables``) and the reranker fitted over its ``count`` best
    candidates: a conditional logit over its logit and the cross-encoder's, and a confidence over every
    feature."""
    first = fit(tables, model=model) if first is None else first
    reread = [reread_table(t, first, count) for t in tables]
    names = (*FEATURES, *READER_FEATURES)
    second = fit(reread, model=model, names=names, columns=[names.index(n) for n in READER_FEATURES],
                 confidence_columns=range(len(names)), card=card)  # fmt: skip
    return first, dataclasses.replace(second, reread=count)


@dataclass(frozen=True, slots=True)
class Fold:
    """What is fitted with one set left out: both rankers, and the threshold chosen on the other sets."""

    held: Table
    rest: tuple[Table, ...]
    first: AnswerModel
    second: AnswerModel
    threshold: float


def reranker_folds(tables: Sequence[Table], *, model: str, count: int) -> list[Fold]:
    """For each table, the first ranker and the reranker (over its ``count`` best) fitted on the others, and
    the threshold chosen on them: fitted once, read by ``leave_one_out_reranker`` and ``leave_one_out_gated``."""
    folds = []
    for i, held in enumerate(tables):
        rest = tuple(t for j, t in enumerate(tables) if j != i)
        first, second = fit_reranker(rest, model=model, count=count)
        threshold = choose_threshold(second, [reread_table(t, first, count) for t in rest])
        folds.append(Fold(held, rest, first, second, threshold))
    return folds


def leave_one_out_reranker(
    tables: Sequence[Table], *, model: str, count: int, folds: Sequence[Fold] | None = None
) -> dict[str, Figures]:
    """``leave_one_out`` of the first ranker and reranker together, each fitted on the other sets (``folds``,
    when given, fitted so on ``tables``); the held-out set's cross-encoder scores come from a model trained
    without it (``fitting.reader``)."""
    folds = reranker_folds(tables, model=model, count=count) if folds is None else folds
    return {f.held.name: model_figures(f.second, reread_table(f.held, f.first, count), f.threshold) for f in folds}


# The cross-encoder rereads a question only when the first ranker's confidence is below a gate
# (``QA_READER_BELOW``): confident first answers are rarely changed by the reread, and skipping it for them
# takes the cross-encoder's time off most questions. The gate chosen is the lowest of GATES whose answers,
# on the sets it is chosen on, keep all but MAX_GATE_LOSS of the right answers and of the refusals of
# questions the documents do not answer that rereading every question gives.
GATES = tuple(step / 20 for step in range(21))
MAX_GATE_LOSS = 0.005


@dataclass(frozen=True, slots=True)
class Gated:
    """Per question, the first ranker's and the reranker's confidence, rightness, top-3 and hard rules."""

    first: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]
    second: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]

    @classmethod
    def of(cls, table: Table, first: AnswerModel, second: AnswerModel) -> Gated:
        return cls(confidences_of(first, table), confidences_of(second, reread_table(table, first, second.reread)))

    def reread(self, gate: float) -> npt.NDArray[np.bool_]:
        """Which questions the cross-encoder rereads under ``gate`` (``qa.selection.rereads``, as the engine)."""
        return rereads(self.first[0], gate)

    def outcome(self, gate: float) -> tuple[npt.NDArray[np.float64], ...]:
        """Per question under ``gate``: confidence, rightness, top-3, hard rule (each model's where it decides)."""
        read = self.reread(gate)
        return tuple(np.where(read, b, a) for a, b in zip(self.first, self.second, strict=True))


def gated_figures(table: Table, gated: Gated, gate: float, threshold: float) -> tuple[Figures, float]:
    """The set's figures when only questions below ``gate`` are reread, and the share of its genuine
    questions reread."""
    confidence, right, top3, hard = gated.outcome(gate)
    genuine = ~table.near_miss.astype(bool)
    return figures(table, confidence, right, top3.astype(bool), threshold, hard.astype(bool)), float(
        gated.reread(gate)[genuine].mean()
    )


def choose_gate(tables: Sequence[Table], gated: Sequence[Gated], threshold: float) -> float:
    """The lowest gate (of GATES) that keeps, over ``tables`` (each set weighing as in the fit), all but
    MAX_GATE_LOSS of the right answers and of the refusals of unanswerable questions and near misses that
    rereading every question gives at ``threshold``."""

    def totals(gate: float) -> tuple[float, float]:
        right = refused = 0.0
        for t, g in zip(tables, gated, strict=True):
            confidence, rights, _, hard = g.outcome(gate)
            declined = (confidence < threshold) | hard.astype(bool)
            weight = question_weight(t) * np.where(t.near_miss, NEAR_MISS_WEIGHT, 1.0)
            answerable = ~t.unanswerable.astype(bool)
            right += float((weight * ((rights > 0) & ~declined & answerable)).sum())
            refused += float((weight * (declined & ~answerable)).sum())
        return right, refused

    every_right, every_refused = totals(1.0)
    for gate in GATES:
        right, refused = totals(gate)
        if right >= (1 - MAX_GATE_LOSS) * every_right and refused >= (1 - MAX_GATE_LOSS) * every_refused:
            return gate
    return 1.0


def leave_one_out_gated(
    tables: Sequence[Table], *, model: str, count: int, folds: Sequence[Fold] | None = None
) -> dict[str, tuple[Figures, Figures, float, float]]:
    """For each table, with the first ranker, the reranker, the threshold (``folds``, when given, fitted so on
    ``tables``) and the gate all chosen on the other tables: its figures rereading only below the gate,
    rereading every question, the share of its genuine questions reread, and the gate."""
    folds = reranker_folds(tables, model=model, count=count) if folds is None else folds
    out = {}
    for f in folds:
        gate = choose_gate(f.rest, [Gated.of(t, f.first, f.second) for t in f.rest], f.threshold)
        gated = Gated.of(f.held, f.first, f.second)
        below, share = gated_figures(f.held, gated, gate, f.threshold)
        every, _ = gated_figures(f.held, gated, 1.0, f.threshold)
        out[f.held.name] = (below, every, share, gate)
    return out
