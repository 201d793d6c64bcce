"""The fit of the answer scorer: deterministic on a fixture, the shipped weights are what it produces,
and the committed candidate tables are what the code computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fitting.__main__ import MODELS, fitted_model
from fitting.fit import Figures, conditional_logit, fit, leave_one_out, model_figures, question_slices
from fitting.sets import SET_NAMES, available
from fitting.tables import TABLES, Table, build_table, load_table
from qa.defaults import DEFAULT_MODEL
from qa.features import COLUMN, FEATURES
from qa.scorer import from_record, load_model, to_record, weights_name


def fixture_table(name: str, seed: int, questions: int = 40, per_question: int = 6) -> Table:
    """A table whose answer is the candidate with the highest ``similarity``, and whose unanswerable
    questions (every fifth) have low ``coverage`` everywhere; no question names anything unknown."""
    rng = np.random.default_rng(seed)
    rows, question, label, unanswerable = [], [], [], []
    for q in range(questions):
        impossible = q % 5 == 0
        x = rng.random((per_question, len(FEATURES))).astype(np.float32)
        x[:, COLUMN["unknown_names"]] = 0.0
        if impossible:
            x[:, COLUMN["coverage"]] *= 0.2
        best = int(np.argmax(x[:, COLUMN["similarity"]]))
        rows.append(x)
        question += [q] * per_question
        label += [0 if impossible else int(i == best) for i in range(per_question)]
        unanswerable.append(int(impossible))
    y = np.asarray(label, dtype=np.int8)
    positions = np.tile(np.arange(per_question, dtype=np.int16), questions)
    return Table(name, np.concatenate(rows), np.asarray(question, np.int32), y, y.copy(),
                 np.asarray(unanswerable, np.int8), np.zeros(questions, np.int8), y.copy(), positions,
                 np.zeros(len(y), np.int8))  # fmt: skip


def test_fit_is_deterministic_and_learns_the_fixture() -> None:
    """Two fits of the same tables give identical weights; the ranker puts the most weight on the feature
    that decides the fixture's answers, and the fitted model picks them out of sample."""
    tables = [fixture_table("a", 1, questions=200), fixture_table("b", 2, questions=200)]
    first, second = fit(tables, model="m"), fit(tables, model="m")
    assert to_record(first) == to_record(second)
    assert int(np.argmax(first.rank_weights)) == COLUMN["similarity"]
    held = model_figures(first, fixture_table("c", 3), threshold=0.0)
    assert held.picked >= 0.9
    assert from_record(json.loads(json.dumps(to_record(first)))).rank_weights.tolist() == pytest.approx(
        first.rank_weights.tolist(), abs=1e-8
    )


def test_conditional_logit_matches_a_closed_form() -> None:
    """One feature, two candidates, the answer always the first: the fitted weight w solves the
    penalised optimum exactly, (1 - p) = penalty * w with p = e^w / (e^w + e^-w) for features +1/-1."""
    x = np.array([[1.0], [-1.0]] * 3)
    target = np.array([1.0, 0.0] * 3)
    groups = [slice(0, 2), slice(2, 4), slice(4, 6)]
    w = conditional_logit(x, target, groups, np.ones(3), penalty=0.1)[0]
    p = np.exp(w) / (np.exp(w) + np.exp(-w))
    # Gradient per group: -(1 - p) * 2 (the feature gap); the ridge is penalty * 3 * w.
    assert 3 * 2 * (1 - p) == pytest.approx(0.1 * 3 * w, abs=1e-9)


def test_question_slices_follow_the_rows() -> None:
    table = fixture_table("a", 1, questions=3, per_question=2)
    assert question_slices(table) == [slice(0, 2), slice(2, 4), slice(4, 6)]


def test_leave_one_out_never_sees_the_left_out_set() -> None:
    """The left-out figures are the model fitted on the other tables, measured on the left-out one."""
    tables = [fixture_table("a", 1), fixture_table("b", 2), fixture_table("c", 3)]
    held = leave_one_out(tables, model="m", threshold=0.5)
    for i, table in enumerate(tables):
        expected = model_figures(fit([t for j, t in enumerate(tables) if j != i], model="m"), table, 0.5)
        assert isinstance(expected, Figures)
        assert held[table.name].row() == expected.row()


@pytest.mark.slow
def test_shipped_weights_are_what_the_fit_produces() -> None:
    """`python -m fitting` on the committed tables reproduces the weights in qa/models (to 1e-6)."""
    tables = [load_table(name) for name in SET_NAMES]
    produced = to_record(fitted_model(tables, DEFAULT_MODEL))
    shipped = json.loads((MODELS / weights_name(DEFAULT_MODEL)).read_text(encoding="utf-8"))
    assert produced["features"] == shipped["features"] == list(FEATURES)
    assert produced["card"]["tables"] == shipped["card"]["tables"]
    for key in ("mean", "scale", "rank_weights", "confidence_mean", "confidence_scale", "confidence_weights"):
        assert produced[key] == pytest.approx(shipped[key], abs=1e-6), key
    assert produced["confidence_bias"] == pytest.approx(shipped["confidence_bias"], abs=1e-6)
    assert produced["merge_margin"] == shipped["merge_margin"]
    assert load_model(DEFAULT_MODEL).card["tables"] == shipped["card"]["tables"]


def test_every_set_has_a_committed_table() -> None:
    """The six tables the shipped weights were fitted on are in the repo, with today's feature columns."""
    assert sorted(p.stem for p in Path(TABLES).glob("*.npz")) == sorted(SET_NAMES)
    for name in SET_NAMES:
        table = load_table(name)
        assert table.features.shape == (len(table.label), len(FEATURES))
        assert table.n_questions == len(table.near_miss) > 0


@pytest.mark.model
@pytest.mark.slow
def test_gold_table_is_what_the_code_computes(embedder) -> None:  # type: ignore[no-untyped-def]
    """Rebuilding the gold set's table with today's code and the real model gives the committed table."""
    if not available("gold"):
        pytest.skip("the default corpus is absent")
    rebuilt, committed = build_table("gold", embedder), load_table("gold")
    assert rebuilt.question.tolist() == committed.question.tolist()
    assert rebuilt.label.tolist() == committed.label.tolist()
    assert rebuilt.near_miss.tolist() == committed.near_miss.tolist()
    assert np.abs(rebuilt.features - committed.features).max() < 1e-4


def test_default_threshold_is_the_one_the_fit_chose() -> None:
    """QA_MIN_SCORE's default is the threshold `python -m fitting` chose on all six sets (recorded in the card)."""
    from qa.defaults import DEFAULT_MIN_SCORE

    assert load_model(DEFAULT_MODEL).card["min_score"] == DEFAULT_MIN_SCORE
