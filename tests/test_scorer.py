"""Tests for ``qa.scorer``: the JSON record, the shipped model's monotonicity, refusal reasons.

The shipped weights are refitted from time to time, so tests on ``load_model()`` assert properties
that any sensible fit must have (a feature that is evidence for an answer never counts against it),
never a weight's value. Those that the current fit breaks are ``xfail(strict=True)`` with the numbers seen.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from qa.features import COLUMN, FEATURES
from qa.question import Profile, profile
from qa.scorer import (
    NO_ANSWER,
    READER_FEATURES,
    AnswerModel,
    from_record,
    load_model,
    refusal_reason,
    to_record,
    words_of,
)
from qa.tokens import Vocabulary

N = len(FEATURES)


def hand_model(**confidence_weights: float) -> AnswerModel:
    """A model with unit scales, zero means, a similarity ranker and the given confidence weights (by name)."""
    rank_weights = np.zeros(N)
    rank_weights[COLUMN["similarity"]] = 1.0
    weights = np.zeros(N + 2)
    for name, weight in confidence_weights.items():
        weights[(*FEATURES, "share", "margin").index(name)] = weight
    return AnswerModel(
        model="test", features=FEATURES, mean=np.zeros(N), scale=np.ones(N), rank_weights=rank_weights,
        confidence_mean=np.zeros(N + 2), confidence_scale=np.ones(N + 2), confidence_weights=weights,
        confidence_bias=0.0, card={},
    )  # fmt: skip


# --- the record -------------------------------------------------------------------------------------


def fitted_looking_model() -> AnswerModel:
    """A model with distinct values (at most 8 decimals, as the record keeps) in every field."""
    steps = np.arange(N, dtype=np.float64)
    return AnswerModel(
        model="all-MiniLM-L6-v2", features=FEATURES, mean=steps / 8, scale=1 + steps / 4,
        rank_weights=(steps - 10) / 16, confidence_mean=np.concatenate([steps / 64, [0.5, 2.25]]),
        confidence_scale=np.concatenate([1 + steps / 2, [0.25, 1.5]]),
        confidence_weights=np.concatenate([steps / 32, [0.125, 1.375]]), confidence_bias=-0.75,
        card={"fitted_by": "test", "threshold": 0.45},
    )  # fmt: skip


def test_record_round_trip() -> None:
    """to_record is plain JSON, and from_record rebuilds every field from it."""
    model = fitted_looking_model()
    record = json.loads(json.dumps(to_record(model)))
    again = from_record(record)
    assert (again.model, again.features, again.card, again.confidence_bias) == (
        model.model, FEATURES, model.card, -0.75,
    )  # fmt: skip
    for field in ("mean", "scale", "rank_weights", "confidence_mean", "confidence_scale", "confidence_weights"):
        assert np.array_equal(getattr(again, field), getattr(model, field)), field
        assert getattr(again, field).dtype == np.float64
    assert to_record(again) == record


def test_record_rounds_to_8_decimals() -> None:
    """Weights are stored rounded to 8 decimals, so a record stays readable and diffs stay small."""
    record = to_record(fitted_looking_model())
    record_of_third = to_record(hand_model(similarity=1 / 3))
    assert record_of_third["confidence_weights"][COLUMN["similarity"]] == 0.33333333
    assert record["format"] == 1 and record["features"] == list(FEATURES)


@pytest.mark.parametrize("version", [0, 2, None])
def test_from_record_refuses_another_format(version: int | None) -> None:
    """A record of another format version (or none) is refused with the versions in the message."""
    record = to_record(fitted_looking_model())
    if version is None:
        del record["format"]
    else:
        record["format"] = version
    with pytest.raises(ValueError, match=rf"format {version!r}; this version reads 1"):
        from_record(record)


@pytest.mark.parametrize(
    "features",
    [list(FEATURES[:-1]), [*FEATURES, "extra"], [FEATURES[1], FEATURES[0], *FEATURES[2:]]],
    ids=["one fewer", "one more", "reordered"],
)
def test_from_record_refuses_other_features(features: list[str]) -> None:
    """Weights are read by column: a record naming other features, or the same in another order, is refused."""
    record = to_record(fitted_looking_model())
    record["features"] = features
    with pytest.raises(ValueError, match="features differ from qa.features.FEATURES"):
        from_record(record)


# --- the shipped model's monotonicity ---------------------------------------------------------------

GRID = np.linspace(0.0, 1.0, 11)


def _rows(model: AnswerModel, names: tuple[str, ...]) -> npt.NDArray[np.float32]:
    """The average candidate (the model's means), once per grid value, with ``names`` set to that value."""
    matrix = np.tile(model.mean.astype(np.float32), (len(GRID), 1))
    for name in names:
        matrix[:, COLUMN[name]] = GRID
    return matrix


def _non_decreasing(values: npt.NDArray[np.float64]) -> bool:
    return bool(np.all(np.diff(values) >= -1e-12))


def _sweep_logits(names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    model = load_model()
    return model.logits(_rows(model, names))


def _sweep_confidences(names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """The confidence of a lone candidate (its share is 1 and its margin 0, whatever the row) along the grid."""
    model = load_model()
    matrix = _rows(model, names)
    return np.array([model.confidences(matrix[i : i + 1])[0] for i in range(len(GRID))])


@pytest.mark.parametrize(
    "names",
    [
        ("similarity",),
        ("context_coverage",),
        ("coverage", "context_coverage"),  # a unit gaining a question word gains it in both
        ("type_found",),
        ("coverage",),
        ("window",),
    ],
    ids=lambda names: "+".join(names),
)
def test_shipped_ranker_never_lowers_a_candidate_for_more_evidence(names: tuple[str, ...]) -> None:
    """With all else fixed, more similarity, coverage or a found answer type never lowers the ranking logit."""
    logits = _sweep_logits(names)
    assert _non_decreasing(logits), logits.round(3).tolist()


@pytest.mark.parametrize(
    "names",
    [
        ("type_missing",),
        ("unknown_names",),
        ("missing_weight",),
        ("attribute_missing",),
        ("dated_elsewhere",),
    ],
    ids=lambda names: "+".join(names),
)
def test_shipped_confidence_never_rises_for_evidence_against(names: tuple[str, ...]) -> None:
    """With all else fixed, more question weight missing, a missing answer type or an unknown name never raise it."""
    confidences = _sweep_confidences(names)
    assert _non_decreasing(-confidences), confidences.tolist()


def test_shipped_confidence_prefers_the_asked_type_found_to_missing() -> None:
    """A unit holding the asked kind of answer (found 1, missing 0) is never less sure than one lacking it."""
    model = load_model()
    row = model.mean.astype(np.float32)[None, :].copy()
    found, missing = row.copy(), row.copy()
    found[0, COLUMN["type_found"]], found[0, COLUMN["type_missing"]] = 1.0, 0.0
    missing[0, COLUMN["type_found"]], missing[0, COLUMN["type_missing"]] = 0.0, 1.0
    assert model.confidences(found)[0] > model.confidences(missing)[0]


def test_shipped_model_reads_the_current_features() -> None:
    """The shipped file loads, names FEATURES, and has a weight per feature (plus share and margin)."""
    model = load_model()
    assert model.features == FEATURES
    assert model.mean.shape == model.scale.shape == model.rank_weights.shape == (N,)
    assert model.confidence_weights.shape == model.confidence_mean.shape == model.confidence_scale.shape == (N + 2,)
    fallback = load_model("no-such-model")  # an embedding model without weights of its own
    assert fallback.model == "all-MiniLM-L6-v2"
    assert np.array_equal(fallback.rank_weights, model.rank_weights)


def test_a_lone_candidates_share_and_margin_are_fixed() -> None:
    """Alone, a candidate's share is 1 and its margin 0 (standardised), whatever its row."""
    model = load_model()
    for matrix in (_rows(model, ("similarity",))[:1], _rows(model, ("similarity",))[-1:]):
        expected = (np.array([1.0, 0.0]) - model.confidence_mean[-2:]) / model.confidence_scale[-2:]
        assert model.confidence_inputs(matrix)[0, -2:].tolist() == pytest.approx(expected.tolist())


# --- refusal_reason ---------------------------------------------------------------------------------

SALARY = "What is the salary of a fusion center analyst?"


def asked(question: str, vocabulary: Vocabulary | None = None) -> Profile:
    known = Vocabulary(["salari", "fusion", "center", "analyst", "director", "program"])
    return profile(question, {}, 1.0, vocabulary or known)


def inputs_with(model: AnswerModel, **values: float) -> npt.NDArray[np.float64]:
    """The confidence inputs of a lone candidate whose row holds ``values`` and zeros elsewhere."""
    row = np.zeros((1, N), dtype=np.float32)
    for name, value in values.items():
        row[0, COLUMN[name]] = value
    inputs: npt.NDArray[np.float64] = model.confidence_inputs(row)[0]
    return inputs


def test_refusal_names_unknown_names_first() -> None:
    """Names the corpus never mentions are the reason, before any feature, with or without a candidate."""
    model = hand_model(attribute_missing=-1.0)
    question = asked("Who won the FIFA World Cup in Texas?")
    expected = "these documents never mention “FIFA World Cup”, “Texas”"
    assert refusal_reason(model, inputs_with(model, attribute_missing=1.0), question, frozenset()) == expected
    assert refusal_reason(model, None, question, frozenset()) == expected


def test_refusal_without_a_candidate() -> None:
    """Nothing retrieved and nothing unknown: the general reason."""
    assert refusal_reason(hand_model(), None, asked(SALARY), frozenset()) == NO_ANSWER


def test_refusal_names_the_attribute_as_typed() -> None:
    """When attribute_missing pulls hardest, the reason quotes the attribute's word from the question."""
    model = hand_model(attribute_missing=-1.0)
    reason = refusal_reason(model, inputs_with(model, attribute_missing=1.0), asked(SALARY), frozenset())
    assert reason == "no passage mentions the “salary” asked about"


@pytest.mark.parametrize(
    ("feature", "question", "absent", "reason"),
    [
        ("type_missing", "When did the program start?", frozenset(), "no passage gives the date asked for"),
        ("type_missing", "How many analysts work there?", frozenset(), "no passage gives the number asked for"),
        ("missing_weight", SALARY, frozenset({"fusion", "analyst"}), "no passage uses “fusion”, “analyst”"),
        ("missing_weight", SALARY, frozenset(), "no passage uses some of them"),
        ("passage_missing", SALARY, frozenset({"salari"}), "the closest passage does not use “salary”"),
        ("dated_elsewhere", "What was the salary in 2019?", frozenset(), "the closest passage is about another period"),
        ("similarity", SALARY, frozenset(), "no passage is close in meaning to the question"),
        ("first_unit", SALARY, frozenset(), NO_ANSWER),  # a feature without words of its own
    ],
)
def test_refusal_names_the_feature_that_pulled_hardest(
    feature: str, question: str, absent: frozenset[str], reason: str
) -> None:
    """The most negative term of the confidence's logit picks the reason."""
    model = hand_model(**{feature: -1.0, "similarity": -0.5} if feature != "similarity" else {feature: -1.0})
    inputs = inputs_with(model, **{feature: 1.0, "similarity": 1.0})
    assert refusal_reason(model, inputs, asked(question, Vocabulary(["2019"])), absent) == reason


def test_refusal_when_nothing_pulled_down() -> None:
    """No negative term: the general reason, not a feature's."""
    model = hand_model(similarity=1.0)
    assert refusal_reason(model, inputs_with(model, similarity=1.0), asked(SALARY), frozenset()) == NO_ANSWER


@pytest.mark.parametrize("question", ["Where is the program based?", "Why did the program end?"])
def test_refusal_for_place_and_reason_questions(question: str) -> None:
    """A place or reason question is refused with a reason, like any other."""
    model = hand_model(similarity=-1.0)
    reason = refusal_reason(model, inputs_with(model, similarity=1.0), asked(question), frozenset())
    assert reason == "no passage is close in meaning to the question"


# --- words_of ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "tokens", "expected"),
    [
        (SALARY, frozenset({"salari"}), "“salary”"),
        (SALARY, frozenset({"analyst", "fusion"}), "“fusion”, “analyst”"),  # in question order
        ("Agencies and agencies, agencies?", frozenset({"agenc"}), "“Agencies”, “agencies”"),  # each spelling once
        ("What is California’s law?", frozenset({"california"}), "“California’s”"),  # the word as typed
        (SALARY, frozenset({"texa"}), ""),
        (SALARY, frozenset(), ""),
    ],
)
def test_words_of(question: str, tokens: frozenset[str], expected: str) -> None:
    """The question's words whose tokens are given, as typed, quoted and comma-separated."""
    assert words_of(question, tokens) == expected


# --- the reranker -----------------------------------------------------------------------------------


def test_reranker_record_round_trip_keeps_its_reread_count() -> None:
    """A reranker's record names FEATURES then READER_FEATURES and the number of candidates it was fitted on."""
    width = N + len(READER_FEATURES)
    model = AnswerModel(
        model="m", features=(*FEATURES, *READER_FEATURES), mean=np.zeros(width), scale=np.ones(width),
        rank_weights=np.arange(width) / 8, confidence_mean=np.zeros(width + 2), confidence_scale=np.ones(width + 2),
        confidence_weights=np.arange(width + 2) / 16, confidence_bias=0.5, card={}, merge_margin=0.25, reread=4,
    )  # fmt: skip
    record = json.loads(json.dumps(to_record(model)))
    assert record["reread"] == 4 and record["features"][-2:] == ["ranking", "reader"]
    again = from_record(record)
    assert (again.reread, again.features, again.merge_margin) == (4, model.features, 0.25)
    assert np.array_equal(again.confidence_weights, model.confidence_weights)
    record["reread"] = 0  # a first ranker must name FEATURES alone
    with pytest.raises(ValueError, match="features differ"):
        from_record(record)


def test_first_ranker_record_has_no_reread_count() -> None:
    assert "reread" not in to_record(fitted_looking_model())
    assert from_record(to_record(fitted_looking_model())).reread == 0


def test_shipped_reranker_trusts_the_cross_encoder() -> None:
    """The shipped reranker reads FEATURES + READER_FEATURES; a higher cross-encoder logit never lowers a
    candidate's ranking logit nor its confidence (all else at the fit's average)."""
    model = load_model(reranker=True)
    assert model.features == (*FEATURES, *READER_FEATURES) and model.reread > 0
    matrix = np.tile(model.mean.astype(np.float32), (len(GRID), 1))
    matrix[:, -1] = np.linspace(-6.0, 6.0, len(GRID))
    assert _non_decreasing(model.logits(matrix))
    confidences = np.array([model.confidences(matrix[i : i + 1])[0] for i in range(len(GRID))])
    assert _non_decreasing(confidences) and confidences[-1] > confidences[0]
