"""Tests for ``qa.metrics`` on small hand-computed cases."""

from __future__ import annotations

import math
import statistics

import pytest

from qa.metrics import (
    AbstentionScores,
    abstention_scores,
    best_threshold,
    calibration_error,
    calibration_floor,
    contains_answer,
    exact_match,
    fold,
    mean,
    ndcg_at_k,
    normalize_answer,
    percentile,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)

# --- normalize_answer ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Cat!", "cat"),
        ("an apple, a day", "apple day"),
        ("  \tFoo\n Bar  ", "foo bar"),
        ("A", ""),
        # Articles only as whole words: "theatre" and "banana" survive.
        ("the theatre", "theatre"),
        ("a banana", "banana"),
        # Punctuation is deleted, not replaced by a space (upstream quirk).
        ("Hello,World", "helloworld"),
        # Only ASCII punctuation is removed; the curly apostrophe stays.
        ("It\u2019s", "it\u2019s"),
        # Articles are removed after punctuation, so "(the)" loses both.
        ("(the) end.", "end"),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


# --- exact_match -----------------------------------------------------------


def test_exact_match_any_gold() -> None:
    assert exact_match("The Cat.", ["dog", "a cat"]) == 1.0


def test_exact_match_no_gold_matches() -> None:
    assert exact_match("cat sat", ["cat", "sat", "the cat sat down"]) == 0.0


def test_exact_match_none_and_empty_golds() -> None:
    assert exact_match(None, ["cat"]) == 0.0
    assert exact_match("cat", []) == 0.0


def test_exact_match_both_normalise_to_empty() -> None:
    # Official SQuAD behaviour: "" and "the" both normalise to "".
    assert exact_match("", ["the"]) == 1.0


# --- token_f1 --------------------------------------------------------------


def test_token_f1_partial_overlap() -> None:
    # pred tokens {cat, sat}, gold {cat, sat, down}: P = 1, R = 2/3 -> 0.8.
    assert token_f1("the cat sat", ["cat sat down"]) == 0.8


def test_token_f1_max_over_golds() -> None:
    # vs "dog": 0; vs "cat sat": P = 1, R = 1/2 -> 2/3; vs "cat": 1.0.
    assert token_f1("cat", ["dog", "cat sat"]) == pytest.approx(2 / 3)
    assert token_f1("cat", ["dog", "cat sat", "Cat!"]) == 1.0


def test_token_f1_counts_repeated_tokens_once_per_occurrence() -> None:
    # Counter overlap: min(2, 1) = 1 common token; P = 1/2, R = 1 -> 2/3.
    assert token_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)
    # min(2, 2) = 2 common tokens: P = 2/2, R = 2/3 -> 0.8 (set overlap: 0.4).
    assert token_f1("cat cat", ["cat cat dog"]) == pytest.approx(0.8)


def test_token_f1_zero_cases() -> None:
    assert token_f1("dog", ["cat"]) == 0.0
    assert token_f1(None, ["cat"]) == 0.0
    assert token_f1("cat", []) == 0.0
    # SQuAD v1.1: no common tokens -> 0, even when both sides are empty.
    assert token_f1("the", ["a"]) == 0.0


# --- contains_answer -------------------------------------------------------


def test_contains_answer_curly_apostrophe_and_case() -> None:
    prediction = "A Driver\u2019s Licence is required for all staff."
    assert contains_answer(prediction, ["driver's licence"])
    assert contains_answer("driver's licence", ["DRIVER\u2019S LICENCE"])


def test_contains_answer_curly_double_quotes() -> None:
    assert contains_answer("He said \u201cstop\u201d twice.", ['"STOP"'])


def test_contains_answer_nfkc_and_casefold() -> None:
    # U+FB01 (fi ligature) and full-width letters fold under NFKC.
    assert contains_answer("Open the \ufb01le", ["FILE"])
    assert contains_answer("\uff21\uff22\uff23 corp", ["abc"])
    # casefold maps "ß" to "ss" (lower() would not).
    assert contains_answer("Hauptstra\u00dfe 5", ["HAUPTSTRASSE"])


def test_contains_answer_whitespace_runs() -> None:
    assert contains_answer("within\n\t 30   days", ["within 30 days"])
    assert contains_answer("within 30 days", ["  within\u00a030\n days "])


def test_contains_answer_negative_cases() -> None:
    assert not contains_answer("within 30 days", ["within 60 days"])
    assert not contains_answer(None, ["anything"])
    assert not contains_answer("anything", [])
    # Empty or whitespace-only golds never match.
    assert not contains_answer("anything", ["", "   \n"])


def test_fold() -> None:
    assert fold("  The\u00a0Driver\u2019s\n\nLICENCE \u201cX\u201d ") == ('the driver\'s licence "x"')


# --- ranking ---------------------------------------------------------------


def test_recall_at_k() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"c"}, 2) == 0.0
    assert recall_at_k(ranked, {"c"}, 3) == 1.0
    assert recall_at_k(ranked, ["z", "a"], 1) == 1.0
    assert recall_at_k(ranked, set(), 4) == 0.0
    assert recall_at_k([], {"a"}, 5) == 0.0


def test_reciprocal_rank() -> None:
    ranked = ["x", "g", "y", "h"]
    assert reciprocal_rank(ranked, {"g"}) == 0.5
    # The first relevant position counts, not the later one.
    assert reciprocal_rank(ranked, {"h", "g"}) == 0.5
    assert reciprocal_rank(ranked, {"x"}) == 1.0
    assert reciprocal_rank(ranked, {"h"}) == 0.25
    # Relevant only beyond the cut-off.
    assert reciprocal_rank(ranked, {"h"}, k=3) == 0.0
    assert reciprocal_rank(ranked, set()) == 0.0


def test_ndcg_single_relevant_at_rank_two() -> None:
    ranked = ["x", "g"] + [f"n{i}" for i in range(8)]
    assert ndcg_at_k(ranked, {"g"}) == pytest.approx(1 / math.log2(3))


def test_ndcg_two_relevant() -> None:
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3).
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}) == pytest.approx(expected)


def test_ndcg_perfect_and_none() -> None:
    assert ndcg_at_k(["a", "b", "x"], {"a", "b"}) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a"}) == 0.0
    assert ndcg_at_k(["a"], set()) == 0.0


def test_ndcg_ideal_capped_at_k() -> None:
    # Two relevant ids but k = 1: ideal DCG covers one position only.
    assert ndcg_at_k(["a", "b"], {"a", "b"}, k=1) == pytest.approx(1.0)
    # Relevant at index 2 is outside k = 2.
    assert ndcg_at_k(["x", "y", "a"], {"a"}, k=2) == 0.0


def test_ndcg_ideal_counts_relevant_ids_never_retrieved() -> None:
    # "b" is relevant but not retrieved: DCG = 1 (a at 0); ideal = 1 + 1/log2(3) (a and b first).
    assert ndcg_at_k(["a", "x", "y"], {"a", "b"}) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # The cut-off metrics look only at the first relevant id, so "b" changes nothing there.
    assert recall_at_k(["a", "x", "y"], {"a", "b"}, 1) == 1.0
    assert reciprocal_rank(["a", "x", "y"], {"a", "b"}) == 1.0


def test_ndcg_duplicate_ids_earn_gain_once() -> None:
    # Without de-duplication this would reach 1.0.
    expected = 1.0 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "a"], {"a", "b"}) == pytest.approx(expected)


@pytest.mark.parametrize("k", [0, -1])
def test_ranking_rejects_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(["a"], {"a"}, k)
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank(["a"], {"a"}, k)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(["a"], {"a"}, k)


# --- mean and percentile ---------------------------------------------------


def test_mean() -> None:
    assert mean([]) == 0.0
    assert mean([1.0, 2.0, 3.0, 4.0]) == 2.5
    # fsum: a naive sum gives 0.09999999999999999.
    assert mean([0.1] * 10) == 0.1


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50.0, 2.5),
        ([10.0], 99.0, 10.0),
        ([1.0, 2.0, 3.0, 4.0], 0.0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100.0, 4.0),
        # Unsorted input; position (4 - 1) * 0.25 = 0.75 -> 1 + 0.75 * 1.
        ([4.0, 1.0, 3.0, 2.0], 25.0, 1.75),
        # Position 0.9 between 0 and 10.
        ([0.0, 10.0], 90.0, 9.0),
        # Position (5 - 1) * 0.95 = 3.8 -> 40 + 0.8 * (100 - 40).
        ([10.0, 20.0, 30.0, 40.0, 100.0], 95.0, 88.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize("values", [[7], [3, 1], [23, 41, 5], [1, 2, 2, 9], [153, 137, 160, 90, 201, 175]])
def test_percentile_50_is_the_median(values: list[int]) -> None:
    """The evaluation's medians (answer characters, answer units) moved from statistics.median to here."""
    assert percentile(values, 50) == statistics.median(values)


def test_percentile_matches_numpy_linear() -> None:
    np = pytest.importorskip("numpy")
    values = [3.2, 0.5, 7.7, 7.7, 1.0, 12.25, 4.0]
    for q in (0.0, 1.0, 33.3, 50.0, 90.0, 99.0, 100.0):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


@pytest.mark.parametrize(
    ("values", "q", "message"),
    [
        ([], 50.0, "empty"),
        ([1.0], -0.1, "q must be"),
        ([1.0], 100.1, "q must be"),
        ([1.0], math.nan, "q must be"),
    ],
)
def test_percentile_errors(values: list[float], q: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        percentile(values, q)


# --- abstention_scores -----------------------------------------------------


def test_abstention_scores_hand_table() -> None:
    #  question   abstained  unanswerable  outcome
    #  q1         yes        yes           TP
    #  q2         yes        no            FP
    #  q3         no         yes           FN
    #  q4         no         no            TN
    #  q5         yes        yes           TP
    #  q6         no         no            TN
    #  q7         no         yes           FN
    # TP = 2, FP = 1, FN = 2; 4 unanswerable, 3 answerable.
    abstained = [True, True, False, False, True, False, False]
    unanswerable = [True, False, True, False, True, False, True]
    s = abstention_scores(abstained, unanswerable)
    assert s.precision == 2 / 3
    assert s.recall == 1 / 2
    # 2PR / (P + R) = (2/3) / (7/6) = 4/7.
    assert s.f1 == pytest.approx(4 / 7)
    assert s.false_refusal_rate == 1 / 3
    assert (s.n_unanswerable, s.n_answerable) == (4, 3)


def test_abstention_scores_perfect() -> None:
    s = abstention_scores([True, False, True], [True, False, True])
    assert s == AbstentionScores(1.0, 1.0, 1.0, 0.0, 2, 1)


def test_abstention_scores_nothing_to_catch_nothing_refused() -> None:
    s = abstention_scores([False, False], [False, False])
    assert s == AbstentionScores(1.0, 1.0, 1.0, 0.0, 0, 2)
    assert abstention_scores([], []) == AbstentionScores(1.0, 1.0, 1.0, 0.0, 0, 0)


def test_abstention_scores_only_false_refusals() -> None:
    # No unanswerable questions but one abstention: precision 0/1, recall 0/0.
    s = abstention_scores([True, False, False, False], [False] * 4)
    assert s == AbstentionScores(0.0, 0.0, 0.0, 0.25, 0, 4)


def test_abstention_scores_never_abstains() -> None:
    # Unanswerable questions exist but nothing abstained: precision 0/0 -> 0.
    s = abstention_scores([False, False], [True, False])
    assert s == AbstentionScores(0.0, 0.0, 0.0, 0.0, 1, 1)


def test_abstention_scores_length_mismatch() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        abstention_scores([True], [True, False])


# --- best_threshold --------------------------------------------------------


def test_best_threshold_clear_separation() -> None:
    # Abstaining below 0.7 catches both unanswerable and refuses nothing.
    threshold, s = best_threshold([0.9, 0.8, 0.7], [0.1, 0.2])
    assert threshold == 0.7
    assert s == AbstentionScores(1.0, 1.0, 1.0, 0.0, 2, 3)


def test_best_threshold_ties_go_to_lower_threshold() -> None:
    # t = 0.2: TP 1, FP 0, FN 1 -> F1 2/3.
    # t = 0.9: TP 2, FP 2, FN 0 -> F1 4/6 = 2/3 as well; the lower one wins.
    threshold, s = best_threshold([0.2, 0.3, 0.9], [0.1, 0.4], max_false_refusal=1.0)
    assert threshold == 0.2
    assert s.f1 == pytest.approx(2 / 3)
    assert s.false_refusal_rate == 0.0


def test_best_threshold_false_refusal_bound_is_inclusive() -> None:
    answerable = [0.9] * 49 + [0.15]
    unanswerable = [0.1, 0.2]
    # t = 0.9: TP 2, FP 1 (the 0.15) -> FRR 1/50 = 0.02, allowed; F1 4/5.
    threshold, s = best_threshold(answerable, unanswerable)
    assert threshold == 0.9
    assert s.f1 == pytest.approx(0.8)
    assert s.false_refusal_rate == pytest.approx(0.02)
    # With no false refusals allowed, the best is t = 0.15: TP 1, FN 1 -> 2/3.
    threshold, s = best_threshold(answerable, unanswerable, max_false_refusal=0.0)
    assert threshold == 0.15
    assert s.f1 == pytest.approx(2 / 3)
    assert s.false_refusal_rate == 0.0


def test_best_threshold_matches_abstention_scores() -> None:
    answerable = [0.6, 0.35, 0.8, 0.5]
    unanswerable = [0.3, 0.55, 0.1]
    threshold, s = best_threshold(answerable, unanswerable, max_false_refusal=0.3)
    abstained = [x < threshold for x in answerable + unanswerable]
    truth = [False] * len(answerable) + [True] * len(unanswerable)
    assert s == abstention_scores(abstained, truth)
    # t = 0.35 abstains on 0.1 and 0.3: TP 2, FP 0, FN 1 -> F1 4/5, the best
    # (t = 0.5: 4/6; t = 0.55 and above refuse two answerable, FRR 1/2 > 0.3).
    assert threshold == 0.35
    assert s.f1 == pytest.approx(0.8)


def test_best_threshold_above_max_abstains_on_all() -> None:
    threshold, s = best_threshold([], [0.3, 0.5])
    assert threshold == math.nextafter(0.5, math.inf)
    assert s == AbstentionScores(1.0, 1.0, 1.0, 0.0, 2, 0)


def test_best_threshold_no_unanswerable_refuses_nothing() -> None:
    threshold, s = best_threshold([0.4, 0.6], [])
    assert threshold == 0.4
    assert s == AbstentionScores(1.0, 1.0, 1.0, 0.0, 0, 2)


def test_best_threshold_allows_negative_infinity() -> None:
    threshold, s = best_threshold([0.5], [-math.inf, 0.2])
    assert threshold == 0.5
    assert s.f1 == 1.0


@pytest.mark.parametrize(
    ("answerable", "unanswerable", "max_false_refusal", "message"),
    [
        ([], [], 0.02, "at least one score"),
        ([math.nan], [0.1], 0.02, "NaN"),
        ([0.5], [math.inf], 0.02, "inf"),
        ([0.5], [0.1], -0.01, "max_false_refusal"),
        ([0.5], [0.1], 1.5, "max_false_refusal"),
    ],
)
def test_best_threshold_errors(
    answerable: list[float],
    unanswerable: list[float],
    max_false_refusal: float,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        best_threshold(answerable, unanswerable, max_false_refusal=max_false_refusal)


# --- calibration_floor -----------------------------------------------------


def test_calibration_floor_is_the_error_of_outcomes_drawn_from_the_confidences() -> None:
    """Each draw scores outcomes drawn with the confidences' own chances: seeded, so the same every time;
    certain confidences give a floor of zero."""
    confidences = [0.2, 0.5, 0.8, 0.9] * 8
    floor = calibration_floor(confidences, draws=50, seed=3)
    assert len(floor) == 50 and floor == calibration_floor(confidences, draws=50, seed=3)
    assert floor != calibration_floor(confidences, draws=50, seed=4)
    assert all(0 <= e <= 1 for e in floor)
    assert calibration_floor([0.0, 1.0, 1.0], draws=5) == [0.0] * 5


def test_calibration_floor_falls_with_the_number_of_questions() -> None:
    """Sampling error shrinks as 1/sqrt(n): at 0.5 confidence the floor's mean is about 0.4/sqrt(n)
    (the mean absolute deviation of a binomial share); 32 questions sit far above 0.05, 3,200 below."""
    small = statistics.fmean(calibration_floor([0.5] * 32, draws=400))
    large = statistics.fmean(calibration_floor([0.5] * 3200, draws=100))
    assert 0.055 < small < 0.085  # 0.798 * sqrt(0.25 / 32) = 0.0705
    assert 0.005 < large < 0.009  # 0.798 * sqrt(0.25 / 3200) = 0.0071
    assert calibration_error([0.5] * 4, [True, True, False, False]) == 0.0
