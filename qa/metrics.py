"""Pure evaluation metrics: answer matching, ranking, latency and abstention.

Every function here is deterministic, side-effect free and depends only on the
standard library, so the evaluation numbers can be reproduced anywhere.

Answer matching follows the official SQuAD v1.1 evaluation script
(``normalize_answer``, ``exact_match``, ``token_f1``) plus a looser,
Unicode-aware containment check (``contains_answer``) for extractive answers
that quote a whole sentence around the gold span.

Ranking metrics (``recall_at_k``, ``reciprocal_rank``, ``ndcg_at_k``) use
binary relevance over passage ids.  Abstention metrics treat "the service
abstained" / "the question is unanswerable" as the positive class.
"""

from __future__ import annotations

import math
import random
import re
import string
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

__all__ = [
    "AbstentionScores",
    "abstention_scores",
    "best_threshold",
    "contains_answer",
    "exact_match",
    "fold",
    "mean",
    "ndcg_at_k",
    "normalize_answer",
    "percentile",
    "recall_at_k",
    "reciprocal_rank",
    "token_f1",
]

# --- answer matching -------------------------------------------------------

# SQuAD v1.1 removes exactly the characters of ``string.punctuation`` (the 32
# ASCII punctuation characters); non-ASCII punctuation is kept, as upstream.
_SQUAD_PUNCTUATION = frozenset(string.punctuation)

# SQuAD v1.1 removes the English articles "a", "an" and "the" as whole words.
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")

# Typographic quotes that NFKC leaves alone, mapped to their ASCII forms so
# that "Driver’s" (U+2019) matches "Driver's": U+2018/U+2019 are the single
# curly quotes, U+201C/U+201D the double curly quotes.
_QUOTE_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
    }
)

# Any run of Unicode whitespace (``\s`` in a ``str`` pattern is Unicode-aware).
_WHITESPACE_RUN = re.compile(r"\s+")


def normalize_answer(s: str) -> str:
    """Normalise an answer exactly as the official SQuAD v1.1 script does.

    Steps, in the upstream order: lower-case; delete every ASCII punctuation
    character; replace the whole words ``a``, ``an`` and ``the`` by a space;
    collapse whitespace runs to one space and strip the ends.

    Args:
        s: Any answer text.

    Returns:
        The normalised text, e.g. ``"The  Cat!"`` -> ``"cat"``.
    """
    lowered = s.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _SQUAD_PUNCTUATION)
    no_articles = _SQUAD_ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """SQuAD exact match, maximised over the gold answers.

    As upstream, two texts that both normalise to the empty string match
    (e.g. ``""`` and ``"the"``).

    Args:
        prediction: The predicted answer; ``None`` means no answer was given.
        golds: Acceptable gold answers.

    Returns:
        1.0 if the normalised prediction equals any normalised gold, else 0.0
        (also 0.0 when ``prediction`` is ``None`` or ``golds`` is empty).
    """
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return 1.0 if any(pred == normalize_answer(g) for g in golds) else 0.0


def _token_f1_single(prediction: str, gold: str) -> float:
    """SQuAD v1.1 token F1 between one prediction and one gold answer."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        # Also covers an empty side: v1.1 scores it 0, not 1.
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Official SQuAD v1.1 token F1, maximised over the gold answers.

    Tokens are the whitespace-separated words of ``normalize_answer``; the
    overlap is the multiset intersection of prediction and gold tokens.  When
    the overlap is empty the score is 0.0, even if both sides are empty (the
    v1.1 behaviour).

    Args:
        prediction: The predicted answer; ``None`` means no answer was given.
        golds: Acceptable gold answers.

    Returns:
        The best F1 in ``[0, 1]`` over ``golds``; 0.0 when ``prediction`` is
        ``None`` or ``golds`` is empty.
    """
    if prediction is None:
        return 0.0
    return max((_token_f1_single(prediction, g) for g in golds), default=0.0)


def fold(s: str) -> str:
    """Fold text for lenient containment matching.

    Applies Unicode NFKC, maps curly quotes (‘ ’ “ ”) to ASCII ``'`` and
    ``"``, case-folds, collapses each run of whitespace to one space and
    strips the ends.

    Args:
        s: Any text.

    Returns:
        The folded text.
    """
    text = unicodedata.normalize("NFKC", s).translate(_QUOTE_FOLD).casefold()
    return _WHITESPACE_RUN.sub(" ", text).strip()


def contains_answer(prediction: str | None, golds: Sequence[str]) -> bool:
    """Whether any gold answer occurs inside the prediction, after ``fold``.

    Args:
        prediction: The predicted answer text; ``None`` means no answer.
        golds: Acceptable gold answers.  A gold that folds to the empty
            string (empty or whitespace only) never matches.

    Returns:
        True when ``fold(gold)`` is a substring of ``fold(prediction)`` for
        some gold; False when ``prediction`` is ``None`` or ``golds`` is empty.
    """
    if prediction is None:
        return False
    haystack = fold(prediction)
    for gold in golds:
        needle = fold(gold)
        if needle and needle in haystack:
            return True
    return False


# --- ranking ---------------------------------------------------------------


def _check_k(k: int) -> None:
    """Reject cut-offs that would make ``ranked[:k]`` meaningless."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Hit rate at ``k``: whether any relevant id is among the first ``k``.

    This is "recall@k of the gold passage" as reported per question.

    Args:
        ranked: Retrieved ids, best first.
        relevant: The relevant (gold) ids.
        k: Cut-off, at least 1.

    Returns:
        1.0 if some id in ``ranked[:k]`` is relevant, else 0.0 (also 0.0 when
        ``relevant`` is empty).

    Raises:
        ValueError: If ``k < 1``.
    """
    _check_k(k)
    gold = frozenset(relevant)
    return 1.0 if any(doc_id in gold for doc_id in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant id within the top ``k``.

    Args:
        ranked: Retrieved ids, best first.
        relevant: The relevant (gold) ids.
        k: Cut-off, at least 1.

    Returns:
        ``1 / (i + 1)`` where ``i`` is the 0-based position of the first
        relevant id in ``ranked[:k]``; 0.0 if there is none.

    Raises:
        ValueError: If ``k < 1``.
    """
    _check_k(k)
    gold = frozenset(relevant)
    for i, doc_id in enumerate(ranked[:k]):
        if doc_id in gold:
            return 1.0 / (i + 1)
    return 0.0


def _discount(i: int) -> float:
    """DCG gain of a relevant item at 0-based position ``i``: 1 / log2(i + 2)."""
    return 1.0 / math.log2(i + 2)


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary relevance.

    ``DCG = sum(1 / log2(i + 2))`` over the 0-based positions ``i`` in
    ``ranked[:k]`` holding a relevant id; the ideal DCG puts a relevant id at
    each of the first ``min(len(set(relevant)), k)`` positions.  A relevant id
    repeated in ``ranked`` earns gain only at its first position, so the
    result never exceeds 1.

    Args:
        ranked: Retrieved ids, best first.
        relevant: The relevant (gold) ids.
        k: Cut-off, at least 1.

    Returns:
        ``DCG / ideal DCG`` in ``[0, 1]``; 0.0 when ``relevant`` is empty.

    Raises:
        ValueError: If ``k < 1``.
    """
    _check_k(k)
    gold = frozenset(relevant)
    if not gold:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    for i, doc_id in enumerate(ranked[:k]):
        if doc_id in gold and doc_id not in seen:
            seen.add(doc_id)
            dcg += _discount(i)
    ideal = sum(_discount(i) for i in range(min(len(gold), k)))
    return dcg / ideal


# --- aggregates ------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean that is defined for empty input.

    Args:
        values: Numbers to average.

    Returns:
        The mean (computed with ``math.fsum``), or 0.0 when ``values`` is
        empty, so aggregates over empty groups are defined.
    """
    if not values:
        return 0.0
    return math.fsum(values) / len(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Percentile by linear interpolation between closest ranks.

    Same as numpy's default (``method="linear"``): with the values sorted as
    ``v[0..n-1]``, the position is ``p = (n - 1) * q / 100`` and the result
    is ``v[floor(p)] + (v[floor(p) + 1] - v[floor(p)]) * (p - floor(p))``.

    Args:
        values: Sample values, in any order.
        q: Percentile in ``[0, 100]``.

    Returns:
        The interpolated percentile, e.g. ``percentile([1, 2, 3, 4], 50)`` is
        2.5.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside ``[0, 100]``
            (or NaN).
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


# --- abstention ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AbstentionScores:
    """How well abstentions pick out the unanswerable questions.

    The positive class is "abstained" (prediction) / "unanswerable" (truth).

    Attributes:
        precision: Abstentions on unanswerable / all abstentions.
        recall: Abstentions on unanswerable / all unanswerable.
        f1: Harmonic mean of precision and recall.
        false_refusal_rate: Abstentions on answerable / all answerable.
        n_unanswerable: Number of unanswerable questions.
        n_answerable: Number of answerable questions.
    """

    precision: float
    recall: float
    f1: float
    false_refusal_rate: float
    n_unanswerable: int
    n_answerable: int


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator``, or 0.0 when the denominator is zero."""
    return numerator / denominator if denominator else 0.0


def _scores_from_counts(true_pos: int, false_pos: int, n_unanswerable: int, n_answerable: int) -> AbstentionScores:
    """Build ``AbstentionScores`` from confusion counts.

    Args:
        true_pos: Abstentions on unanswerable questions.
        false_pos: Abstentions on answerable questions.
        n_unanswerable: Number of unanswerable questions.
        n_answerable: Number of answerable questions.
    """
    false_neg = n_unanswerable - true_pos
    if n_unanswerable == 0 and false_pos == 0:
        # Nothing to catch and nothing wrongly refused: a perfect abstainer.
        precision = recall = f1 = 1.0
    else:
        precision = _ratio(true_pos, true_pos + false_pos)
        recall = _ratio(true_pos, n_unanswerable)
        # 2TP / (2TP + FP + FN) equals 2PR / (P + R) whenever TP > 0 and is 0
        # when TP == 0; as a ratio of integers it is also exactly reproducible,
        # so equal F1 values compare equal in ``best_threshold``.
        f1 = _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg)
    return AbstentionScores(
        precision=precision,
        recall=recall,
        f1=f1,
        false_refusal_rate=_ratio(false_pos, n_answerable),
        n_unanswerable=n_unanswerable,
        n_answerable=n_answerable,
    )


def abstention_scores(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> AbstentionScores:
    """Score abstentions against which questions are unanswerable.

    With TP = abstained on unanswerable, FP = abstained on answerable and
    FN = answered an unanswerable question: precision = TP / (TP + FP),
    recall = TP / (TP + FN), f1 their harmonic mean and false_refusal_rate
    = FP / number of answerable.  A ratio whose denominator is zero is 0.0,
    except that with no unanswerable questions and no abstentions precision,
    recall and f1 are all 1.0 (false_refusal_rate is then 0.0).

    Args:
        abstained: Per question, whether the service abstained.
        unanswerable: Per question, whether it is truly unanswerable.

    Returns:
        The scores and the class sizes.

    Raises:
        ValueError: If the two sequences differ in length.
    """
    if len(abstained) != len(unanswerable):
        raise ValueError(f"length mismatch: {len(abstained)} abstained vs {len(unanswerable)} unanswerable")
    true_pos = sum(1 for a, u in zip(abstained, unanswerable, strict=True) if a and u)
    false_pos = sum(1 for a, u in zip(abstained, unanswerable, strict=True) if a and not u)
    n_unanswerable = sum(1 for u in unanswerable if u)
    return _scores_from_counts(true_pos, false_pos, n_unanswerable, len(unanswerable) - n_unanswerable)


def best_threshold(
    answerable_scores: Sequence[float],
    unanswerable_scores: Sequence[float],
    *,
    max_false_refusal: float = 0.02,
) -> tuple[float, AbstentionScores]:
    """Choose the abstention threshold that maximises abstention F1.

    The service abstains on a question when its score is strictly below the
    threshold.  Candidates are every distinct score in either list plus
    ``math.nextafter(max_score, inf)`` (the next float above the largest
    score, which abstains on everything).  The smallest candidate abstains on
    nothing, so these cover every distinct abstention pattern.  Among the
    candidates whose false_refusal_rate is ``<= max_false_refusal`` the one
    with the highest F1 wins; equal F1 goes to the lower threshold (fewer
    refusals).  The smallest candidate always qualifies (it refuses
    nothing), so a result always exists.

    Args:
        answerable_scores: Scores of the answerable questions.
        unanswerable_scores: Scores of the unanswerable questions.
        max_false_refusal: Largest allowed false_refusal_rate, in ``[0, 1]``.

    Returns:
        The chosen threshold and the abstention scores it gives.

    Raises:
        ValueError: If both lists are empty, any score is NaN or ``+inf``
            (no threshold lies above it), or ``max_false_refusal`` is
            outside ``[0, 1]``.
    """
    if not 0.0 <= max_false_refusal <= 1.0:
        raise ValueError(f"max_false_refusal must be in [0, 1], got {max_false_refusal}")
    answerable = sorted(answerable_scores)
    unanswerable = sorted(unanswerable_scores)
    all_scores = answerable + unanswerable
    if not all_scores:
        raise ValueError("best_threshold needs at least one score")
    if any(math.isnan(s) or s == math.inf for s in all_scores):
        raise ValueError("scores must not be NaN or +inf")
    candidates = sorted(set(all_scores))
    candidates.append(math.nextafter(candidates[-1], math.inf))

    def scores_at(threshold: float) -> AbstentionScores:
        # bisect_left counts the scores strictly below the threshold.
        return _scores_from_counts(
            true_pos=bisect_left(unanswerable, threshold),
            false_pos=bisect_left(answerable, threshold),
            n_unanswerable=len(unanswerable),
            n_answerable=len(answerable),
        )

    # The smallest candidate refuses nothing (FRR 0), so it always qualifies.
    best_value, best_scores = candidates[0], scores_at(candidates[0])
    for threshold in candidates[1:]:  # ascending: strict ">" keeps the lower on ties
        scores = scores_at(threshold)
        if scores.false_refusal_rate <= max_false_refusal and scores.f1 > best_scores.f1:
            best_value, best_scores = threshold, scores
    return best_value, best_scores


# Equal-width bins of confidence for the calibration error and the reliability diagram.
CALIBRATION_BINS = 10


def reliability_bins(confidence: Sequence[float], right: Sequence[bool]) -> list[tuple[float, float, float, int]]:
    """The reliability diagram's rows: (mean confidence, share right, bin's low edge, count) per non-empty bin.

    Example:
        >>> reliability_bins([0.05, 0.15, 0.95, 0.9], [False, False, True, False])
        [(0.05, 0.0, 0.0, 1), (0.15, 0.0, 0.1, 1), (0.925, 0.5, 0.9, 2)]
    """
    bins: dict[int, list[tuple[float, bool]]] = {}
    for c, r in zip(confidence, right, strict=True):
        bins.setdefault(min(int(c * CALIBRATION_BINS), CALIBRATION_BINS - 1), []).append((c, r))
    return [
        (
            round(mean([c for c, _ in pairs]), 4),
            round(mean([1.0 if r else 0.0 for _, r in pairs]), 4),
            b / CALIBRATION_BINS,
            len(pairs),
        )
        for b, pairs in sorted(bins.items())
    ]


def calibration_error(confidence: Sequence[float], right: Sequence[bool]) -> float:
    """Expected calibration error: the count-weighted mean gap between confidence and share right per bin.

    Example:
        >>> calibration_error([0.9, 0.9, 0.1, 0.1], [True, True, False, False])
        0.1
        >>> calibration_error([], [])
        0.0
    """
    n = len(confidence)
    if n == 0:
        return 0.0
    gaps = sum(count * abs(c - r) for c, r, _, count in reliability_bins(confidence, right))
    return round(gaps / n, 6)


def calibration_floor(confidence: Sequence[float], *, draws: int = 500, seed: int = 0) -> list[float]:
    """The expected calibration errors of a perfectly calibrated confidence on these questions: each draw
    makes every question right with the chance its confidence gives, and scores ``calibration_error``.

    On a small set sampling alone keeps the error well above zero (0.1 to 0.2 for a few dozen questions
    spread over the ten bins), so an error is only meaningful beside this floor.

    Example:
        >>> floor = calibration_floor([0.7] * 20, draws=200)
        >>> 0.05 < mean(floor) < 0.15 and len(floor) == 200
        True
        >>> calibration_floor([1.0, 0.0], draws=3)
        [0.0, 0.0, 0.0]
    """
    rng = random.Random(seed)
    return [calibration_error(confidence, [rng.random() < c for c in confidence]) for _ in range(draws)]
