"""The fit of the answer scorer: deterministic on a fixture, the shipped weights are what it produces,
and the committed candidate tables are what the code computes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from fitting.__main__ import MODELS, fitted_model, half_report
from fitting.fit import (
    CONFIDENCE_SET_WEIGHT,
    Figures,
    Gated,
    by_half,
    choose_gate,
    choose_threshold,
    conditional_logit,
    fit,
    fit_reranker,
    gated_figures,
    leave_one_out,
    leave_one_out_gated,
    leave_one_out_reranker,
    model_figures,
    question_slices,
    reranker_folds,
    reread_table,
)
from fitting.probe import PROBES, compare, defined_term, question_columns, time_columns, with_probe
from fitting.reader import MAX_READ
from fitting.sets import SET_NAMES, available
from fitting.tables import (
    TABLES,
    Table,
    Texts,
    build_table,
    kept_scores,
    load_table,
    save_table,
    save_texts,
)
from qa.defaults import DEFAULT_MODEL
from qa.features import COLUMN, FEATURES
from qa.scorer import READER_FEATURES, from_record, load_model, to_record, weights_name


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


def test_policyqa_weighs_a_quarter_in_the_confidences_fit_and_fully_in_the_rankers() -> None:
    """A set whose labels call every answer wrong (``contained`` all 0, the ranker's labels intact) pulls
    the confidence down less when it is PolicyQA (``CONFIDENCE_SET_WEIGHT``: a quarter) than under any other
    name, and the ranker it fits is the same either way."""
    clean = fixture_table("clean", 1, questions=200)
    noisy = fixture_table("noisy", 2, questions=200)
    noisy = dataclasses.replace(noisy, contained=np.zeros_like(noisy.contained))
    assert CONFIDENCE_SET_WEIGHT == {"policyqa": 0.25}
    full = fit([clean, noisy], model="m")
    quarter = fit([clean, dataclasses.replace(noisy, name="policyqa")], model="m")
    assert quarter.rank_weights.tolist() == full.rank_weights.tolist()
    held = fixture_table("held", 3, questions=100)
    lighter, heavier = model_figures(quarter, held, 0.0), model_figures(full, held, 0.0)
    assert np.mean(lighter.confidences) > np.mean(heavier.confidences) + 0.1


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


@pytest.mark.slow
def test_shipped_reranker_is_what_the_fit_produces() -> None:
    """`python -m fitting` reproduces the reranker in qa/models from the committed tables' cross-encoder
    scores, and its card names the shipped cross-encoder."""
    from fitting.__main__ import fitted_reranker, same_weights
    from qa.defaults import DEFAULT_READER_CANDIDATES
    from qa.reader import READER_DIR

    tables = [load_table(name) for name in SET_NAMES]
    first = fitted_model(tables, DEFAULT_MODEL, held={})
    produced = to_record(fitted_reranker(tables, DEFAULT_MODEL, first, {}, DEFAULT_READER_CANDIDATES))
    shipped = json.loads((MODELS / weights_name(DEFAULT_MODEL, reranker=True)).read_text(encoding="utf-8"))
    assert same_weights(shipped, json.loads(json.dumps(produced)))
    assert produced["card"]["reader_scores"] == shipped["card"]["reader_scores"]
    card = json.loads((READER_DIR / "card.json").read_text(encoding="utf-8"))
    assert shipped["card"]["reader_model"] == card["model_sha256"]


def test_every_set_has_a_committed_table() -> None:
    """The six tables the shipped weights were fitted on are in the repo, with today's feature columns."""
    assert sorted(p.stem for p in Path(TABLES).glob("*.npz")) == sorted(SET_NAMES)
    for name in SET_NAMES:
        table = load_table(name)
        assert table.features.shape == (len(table.label), len(FEATURES))
        assert table.n_questions == len(table.near_miss) > 0


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("name", ["gold", "title6"])
def test_table_is_what_the_code_computes(embedder, name: str) -> None:  # type: ignore[no-untyped-def]
    """Rebuilding a set's table with today's code and the real model gives the committed table. Title 6 is
    rebuilt too: its retrieval holds near ties, so a table built from an index of older code (one cached
    before the build settings were in the cache's key) differs in which of two passages comes first."""
    if not available(name):
        pytest.skip(f"the {name} set's source is absent (the default corpus, or ../shared/datasets)")
    (rebuilt, _), committed = build_table(name, embedder), load_table(name)
    assert rebuilt.question.tolist() == committed.question.tolist()
    assert rebuilt.label.tolist() == committed.label.tolist()
    assert rebuilt.near_miss.tolist() == committed.near_miss.tolist()
    assert_same_features(rebuilt, committed)


# The columns that rank a question's candidates by another column: candidates that tie in it (the same
# sentence in two passages) are ranked by their last bits, which the CPU's kernels change.
ORDERS = {"similarity_order": "similarity", "coverage_order": "context_coverage"}


def assert_same_features(rebuilt: Table, committed: Table, tolerance: float = 1e-4, tie: float = 1e-6) -> None:
    """Every feature within ``tolerance`` of the committed one, except that candidates whose ranked column
    ties within ``tie`` may trade places in its order column (the question's places staying the same)."""
    rows, columns = np.nonzero(np.abs(rebuilt.features - committed.features) > tolerance)
    for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
        name = FEATURES[column]
        assert name in ORDERS, f"row {row}: {name} {rebuilt.features[row, column]} != {committed.features[row, column]}"
        its = np.flatnonzero(rebuilt.question == rebuilt.question[row])
        assert sorted(rebuilt.features[its, column]) == sorted(committed.features[its, column])
        source = rebuilt.features[its, COLUMN[ORDERS[name]]]
        swapped = its[np.abs(rebuilt.features[its, column] - committed.features[its, column]) > tolerance]
        assert np.ptp(rebuilt.features[swapped, COLUMN[ORDERS[name]]]) < tie, (row, name, source)


def test_tied_candidates_may_trade_places_but_nothing_else_may_differ() -> None:
    """The rebuilt-table comparison forgives two tied candidates' order swapped, and nothing more: not an
    order swap between candidates apart in similarity, not any other column moved."""
    table = load_table("gold")
    rows = np.flatnonzero(table.question == 0)[:3]
    similarity, order = COLUMN["similarity"], COLUMN["similarity_order"]
    tied = dataclasses.replace(table, features=table.features.copy())
    tied.features[rows, similarity] = [0.5, 0.5 + 1e-7, 0.4]
    tied.features[rows, order] = [1.0, 0.5, 1 / 3]
    swapped = dataclasses.replace(tied, features=tied.features.copy())
    swapped.features[rows[:2], order] = [0.5, 1.0]
    assert_same_features(swapped, tied)
    apart = dataclasses.replace(tied, features=tied.features.copy())
    apart.features[rows[1:], order] = [1 / 3, 0.5]
    with pytest.raises(AssertionError):
        assert_same_features(apart, tied)
    moved = dataclasses.replace(tied, features=tied.features.copy())
    moved.features[rows[0], similarity] += 1e-3
    with pytest.raises(AssertionError):
        assert_same_features(moved, tied)


def test_default_threshold_is_the_one_the_fit_chose() -> None:
    """QA_MIN_SCORE's default is the threshold `python -m fitting` chose on all six sets for the default
    configuration, the reranker over the cross-encoder (recorded in its card)."""
    from qa.defaults import DEFAULT_MIN_SCORE, DEFAULT_READER_BELOW, DEFAULT_READER_CANDIDATES

    reranker = load_model(DEFAULT_MODEL, reranker=True)
    assert reranker.card["min_score"] == DEFAULT_MIN_SCORE
    assert reranker.reread == DEFAULT_READER_CANDIDATES
    assert reranker.card["reread_below"] == DEFAULT_READER_BELOW


# --- the reranker over the cross-encoder's scores ----------------------------------------------------


def read_table(name: str, seed: int, questions: int = 40) -> Table:
    """``fixture_table`` with cross-encoder scores that single out the answer (its score 2 above the rest)."""
    table = fixture_table(name, seed, questions)
    noise = np.random.default_rng(seed + 100).normal(0.0, 0.5, len(table.label))
    return dataclasses.replace(table, reader=(2.0 * table.label + noise).astype(np.float32))


def test_reread_table_keeps_each_questions_best_candidates_with_the_reader_columns() -> None:
    """Each question keeps its ``count`` best candidates by the first ranker, in table order, with its first
    logit less the question's best and its cross-encoder score appended."""
    table = read_table("a", 1, questions=5)
    first = fit([table], model="m")
    reread = reread_table(table, first, 2)
    logits = first.logits(table.features)
    assert reread.features.shape == (10, len(FEATURES) + 2)
    for q, rows in enumerate(question_slices(table)):
        local = logits[rows]
        best = sorted(np.argsort(-local, kind="stable")[:2])
        kept = reread.features[2 * q : 2 * q + 2]
        assert kept[:, : len(FEATURES)].tolist() == table.features[rows][best].tolist()
        assert kept[:, -2].tolist() == pytest.approx((local[best] - local.max()).tolist(), abs=1e-5)
        assert kept[:, -1].tolist() == table.reader[rows][best].tolist()  # type: ignore[index]
    assert reread.question.tolist() == np.repeat(np.arange(5), 2).tolist()


def test_reranker_learns_to_trust_a_reader_that_finds_the_answer() -> None:
    """Over a first ranker that sees noise only, the reranker puts a positive weight on the cross-encoder's
    column and picks more answers out of sample than the first ranker."""
    tables = [read_table("a", 1, 200), read_table("b", 2, 200)]
    noisy = [dataclasses.replace(t, features=np.random.default_rng(7).random(t.features.shape).astype(np.float32))
             for t in tables]  # fmt: skip
    first, second = fit_reranker(noisy, model="m", count=3)
    assert second.reread == 3 and second.features == (*FEATURES, *READER_FEATURES)
    assert second.rank_weights[-1] > 0 and not second.rank_weights[: len(FEATURES)].any()
    held = read_table("c", 3)
    held = dataclasses.replace(held, features=np.random.default_rng(8).random(held.features.shape).astype(np.float32))
    assert model_figures(second, reread_table(held, first, 3), 0.0).picked > model_figures(first, held, 0.0).picked


def test_reranker_leave_one_out_never_sees_the_left_out_set() -> None:
    """Each left-out set's figures come from rankers and a threshold fitted without it, once for both reports."""
    tables = [read_table("a", 1), read_table("b", 2), read_table("c", 3)]
    folds = reranker_folds(tables, model="m", count=2)
    held = leave_one_out_reranker(tables, model="m", count=2)
    given = leave_one_out_reranker(tables, model="m", count=2, folds=folds)
    assert {name: f.row() for name, f in given.items()} == {name: f.row() for name, f in held.items()}
    gated = [leave_one_out_gated(tables, model="m", count=2, folds=given_folds) for given_folds in (folds, None)]
    assert [{n: (b.row(), e.row(), share, gate) for n, (b, e, share, gate) in g.items()} for g in gated] == [
        {n: (b.row(), e.row(), share, gate) for n, (b, e, share, gate) in gated[1].items()}
    ] * 2
    for i, table in enumerate(tables):
        rest = [t for j, t in enumerate(tables) if j != i]
        first, second = fit_reranker(rest, model="m", count=2)
        threshold = choose_threshold(second, [reread_table(t, first, 2) for t in rest])
        assert (folds[i].held, folds[i].rest, folds[i].threshold) == (table, tuple(rest), threshold)
        assert held[table.name].row() == model_figures(second, reread_table(table, first, 2), threshold).row()


def test_every_committed_table_holds_held_out_reader_scores() -> None:
    """Each table carries cross-encoder scores (from a model trained without its set) for at least every
    question's best candidates; the rest are NaN."""
    for name in SET_NAMES:
        table = load_table(name)
        assert table.reader is not None and table.reader.shape == table.label.shape, name
        for rows in question_slices(table):
            if rows.stop > rows.start:
                assert np.isfinite(table.reader[rows]).sum() >= min(MAX_READ, rows.stop - rows.start), name


def test_reread_table_refuses_a_candidate_without_a_score() -> None:
    """Only the candidates a first ranker may hand over are scored (fitting.reader.rows_to_read); rereading
    one that was not is an error that says what to rerun, never a NaN feature."""
    table = read_table("a", 1, questions=3)
    assert table.reader is not None
    holes = table.reader.copy()
    holes[:] = np.nan
    with pytest.raises(ValueError, match="no cross-encoder score; rerun python -m fitting.reader"):
        reread_table(dataclasses.replace(table, reader=holes), fit([table], model="m"), 2)


# --- rereading only the questions the first ranker is unsure of ---------------------------------------


def gated_fixture() -> tuple[Table, Gated]:
    """40 questions (every fifth unanswerable) whose first confidence is q/40: the first ranker is wrong on
    the answerable ones below 0.4 and the reread right on all; the reread leaves the unanswerable ones'
    confidence as it was."""
    table = fixture_table("a", 1, questions=40)
    n = table.n_questions
    confidence = np.arange(n) / n
    answerable = ~table.unanswerable.astype(bool)
    no = np.zeros(n, dtype=bool)
    first = (confidence, (answerable & (confidence >= 0.4)).astype(np.float64), answerable, no)
    second = (np.where(answerable, 0.9, confidence), answerable.astype(np.float64), answerable, no)
    return table, Gated(first, second)


def test_the_gate_rereads_the_questions_below_it_and_one_rereads_every_question() -> None:
    """Below the gate the reranker's outcome stands, at or above it the first ranker's; 1 rereads all."""
    table, gated = gated_fixture()
    confidence = np.arange(40) / 40
    assert gated.reread(0.5).tolist() == (confidence < 0.5).tolist()
    assert gated.reread(1.0).all() and not gated.reread(0.0).any()
    chosen, right, _, _ = gated.outcome(0.5)
    assert chosen.tolist() == np.where(confidence < 0.5, gated.second[0], confidence).tolist()
    assert right.tolist() == np.where(confidence < 0.5, gated.second[1], gated.first[1]).tolist()
    below, share = gated_figures(table, gated, 0.5, threshold=0.1)
    assert share == 0.5 and below.containment == 1.0


def test_the_gate_chosen_is_the_lowest_that_keeps_what_rereading_every_question_gives() -> None:
    """The first ranker is wrong on answerable questions up to confidence 0.375 (question 15): every gate
    up to 0.35 loses one of them (3% of the right answers, over the 0.5% allowed), 0.40 loses none (the
    confidences, and so the ECE, still differ: the first ranker's stand above the gate)."""
    table, gated = gated_fixture()
    assert choose_gate([table], [gated], threshold=0.1) == 0.4
    assert gated_figures(table, gated, 0.4, 0.1)[0].row()[:6] == gated_figures(table, gated, 1.0, 0.1)[0].row()[:6]
    assert gated_figures(table, gated, 0.35, 0.1)[0].containment < 1.0


def test_gated_leave_one_out_chooses_everything_on_the_other_sets() -> None:
    """Each left-out set's gated figures come from rankers, threshold and gate chosen without it."""
    tables = [read_table("a", 1), read_table("b", 2), read_table("c", 3)]
    held = leave_one_out_gated(tables, model="m", count=2)
    for i, table in enumerate(tables):
        rest = [t for j, t in enumerate(tables) if j != i]
        first, second = fit_reranker(rest, model="m", count=2)
        threshold = choose_threshold(second, [reread_table(t, first, 2) for t in rest])
        gate = choose_gate(rest, [Gated.of(t, first, second) for t in rest], threshold)
        below, share = gated_figures(table, Gated.of(table, first, second), gate, threshold)
        assert held[table.name][0].row() == below.row() and held[table.name][2:] == (share, gate)


def test_another_models_tables_live_in_the_cache_and_are_compared_with_the_defaults() -> None:
    """The default model's tables are the committed ones; another model's are built into the cache
    (``python -m fitting --model M --tables``), and its report puts each of that model's left-out figures
    (here: a scorer on the similarity features only, so the two sides differ) beside the default model's,
    fitted again on the committed tables."""
    from fitting.__main__ import model_report
    from fitting.indexes import CACHE
    from fitting.tables import tables_dir

    assert tables_dir(DEFAULT_MODEL) == TABLES
    assert tables_dir("all-MiniLM-L6-v2-qint8") == CACHE / "all-MiniLM-L6-v2-qint8" / "tables"
    tables = [load_table(name) for name in ("gold", "title6", "title8")]
    similarity = [COLUMN[name] for name in ("similarity", "window", "passage_similarity")]
    theirs = leave_one_out(tables, model=DEFAULT_MODEL, columns=similarity)
    default = leave_one_out(tables, model=DEFAULT_MODEL)
    assert any(theirs[t.name].row() != default[t.name].row() for t in tables)
    text = model_report(tables, "another-model", theirs)
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith(("gold ", "title6 ", "title8 "))]
    assert [row[0].strip() for row in rows] == ["gold", "title6", "title8"]
    for row, table in zip(rows, tables, strict=True):
        pairs = [cell.strip().partition(" / ") for cell in row[2:]]
        expected = zip(theirs[table.name].row(), default[table.name].row(), strict=True)
        assert [(left, right) for left, _, right in pairs if right] == [
            (a, b) for a, b in expected if a != "nan"
        ], row  # fmt: skip


def probe_fixture(name: str, seed: int) -> tuple[Table, Texts]:
    """``fixture_table`` with its similarity column shuffled (no feature tells the answer any more), and texts
    in which the answer, and it alone, defines the term its question asks about."""
    table = fixture_table(name, seed, questions=100)
    features = table.features.copy()
    features[:, COLUMN["similarity"]] = np.random.default_rng(seed).permutation(features[:, COLUMN["similarity"]])
    questions = [f"What is a widget{q}?" for q in range(table.n_questions)]
    candidates = [
        f"A widget{table.question[r]} is a small gadget."
        if table.label[r]
        else f"Shops sold widget{table.question[r]}s."
        for r in range(len(table.label))
    ]
    return dataclasses.replace(table, features=features), Texts(questions, candidates)


@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("What is a 287(g) agreement?", "287(g) agreement"),
        ("Who is an immigration judge?", "immigration judge"),
        ("What counts as a national under the immigration statute?", "national"),
        ("What does the term alien mean?", "alien"),
        ("What is the population of Paris?", None),  # an attribute, not a term
        ("What is it that the agency does?", None),  # a clause
    ],
)
def test_the_definition_probe_finds_the_term_asked_about(question: str, term: str | None) -> None:
    assert defined_term(question) == term


@pytest.mark.parametrize(
    ("question", "row"),
    [
        ("Do you share my data with third parties?", [1.0, 0.0, 4]),  # share, data, third, parties
        ("Can an alien apply for asylum?", [1.0, 0.0, 3]),  # alien, apply, asylum
        ("How many agencies participate in Secure Communities?", [0.0, 1.0, 4]),
        ("What is a 287(g) agreement?", [0.0, 0.0, 3]),  # 287, g, agreement
    ],
)
def test_the_question_probe_reads_the_questions_shape(question: str, row: list[float]) -> None:
    """yes_no, typed and log(1 + content words), the same row for every candidate."""
    columns = question_columns(question, ["one candidate", "another"])
    assert columns.shape == (2, 3) and np.array_equal(columns[0], columns[1])
    assert columns[0, :2].tolist() == row[:2] and columns[0, 2] == pytest.approx(np.log1p(row[2]))


def test_probe_columns_are_appended_to_each_questions_candidates() -> None:
    """``with_probe`` adds the probe's columns after the features, row for row: definition_found where the
    candidate defines the term, definition_missing elsewhere; time_unmet where the year asked is absent."""
    table, texts = probe_fixture("a", 1)
    probed = with_probe(table, texts, PROBES["definition"])
    assert probed.features.shape == (len(table.label), len(FEATURES) + 2)
    assert np.array_equal(probed.features[:, : len(FEATURES)], table.features)
    assert probed.features[:, -2].tolist() == table.label.astype(np.float32).tolist()
    assert probed.features[:, -1].tolist() == (1 - table.label).astype(np.float32).tolist()
    assert time_columns("How many were admitted in 2022?", ["In 2022, 5 were.", "In 2019, 4 were.", "None."]
                        ).ravel().tolist() == [0.0, 1.0, 1.0]  # fmt: skip
    assert time_columns("Who is the current director?", ["As of 2025 it is Lee.", "The director leads it."]
                        ).ravel().tolist() == [0.0, 1.0]  # fmt: skip
    with pytest.raises(ValueError, match="not those of the table"):
        with_probe(table, Texts(texts.questions[:-1], texts.candidates), PROBES["definition"])


def test_a_probe_that_tells_the_answer_lifts_the_left_out_figures() -> None:
    """On tables where no feature tells the answer, the probe whose column does is learnt by the fit and
    picks every left-out answer; without it the pick is about chance (one in six)."""
    fixtures = [probe_fixture(name, seed) for name, seed in (("a", 1), ("b", 2), ("c", 3))]
    figures = compare([t for t, _ in fixtures], {t.name: x for t, x in fixtures}, PROBES["definition"])
    for probed, plain in figures.values():
        assert probed.picked == 1.0
        assert plain.picked < 0.4


def test_training_pairs_sample_at_most_the_questions_asked_for() -> None:
    """``fitting.reader.pairs_of`` (what ``--questions N`` varies): at most N questions and N near misses per set,
    drawn with the seed (the same draw twice); each question's labelled candidates as positives (at most
    POSITIVES), its best-ranked unlabelled ones as negatives (at most NEGATIVES), near misses negatives only."""
    import random

    from fitting.reader import NEGATIVES, POSITIVES, SEED, pairs_of

    table = fixture_table("pairs", 21, questions=40)
    near = np.zeros(table.n_questions, np.int8)
    near[30:] = 1  # ten near misses: unanswerable, nothing labelled
    unanswerable = np.maximum(table.unanswerable, near)
    label = np.where(near[table.question] == 1, 0, table.label).astype(np.int8)
    table = dataclasses.replace(table, near_miss=near, unanswerable=unanswerable, label=label, contained=label.copy())
    rows = range(len(table.label))
    texts = Texts([f"question {q}" for q in range(table.n_questions)],
                  [f"q{table.question[r]} row {r} label {table.label[r]}" for r in rows])  # fmt: skip
    pairs = pairs_of(table, texts, random.Random(SEED), questions=5)
    assert pairs == pairs_of(table, texts, random.Random(SEED), questions=5)
    asked = {q for q, _, _ in pairs}
    near_asked = {q for q in asked if near[int(q.split()[1])]}
    assert len(asked - near_asked) == 5 and len(near_asked) == 5
    for question, text, target in pairs:
        assert text.startswith(f"q{question.split()[1]} ") and target == float(text.endswith("label 1"))
    logits = fit([table], model=DEFAULT_MODEL).logits(table.features)
    for question in asked:
        its = [p for p in pairs if p[0] == question]
        assert sum(p[2] for p in its) <= POSITIVES and sum(1 - p[2] for p in its) == NEGATIVES
        if question in near_asked:
            assert all(p[2] == 0.0 for p in its)
        # the negatives are the question's best-ranked unlabelled candidates, by a scorer fitted on the set
        rows_of = [r for r in rows if texts.questions[table.question[r]] == question and not table.label[r]]
        best = sorted(rows_of, key=lambda r: (-logits[r], r))[:NEGATIVES]
        assert sorted(int(t.split()[2]) for _, t, y in its if y == 0.0) == sorted(best)
    everything = pairs_of(table, texts, random.Random(SEED), questions=1000)
    assert {q for q, _, _ in everything} == set(texts.questions)


def test_question_batches_keep_each_question_whole() -> None:
    """The listwise recipe's batches (``fitting.reader.question_batches``): every pair once, a question's
    pairs all in one batch, at most BATCH pairs a batch, the same order on every call with one seed and
    another with another seed."""
    from fitting.reader import BATCH, question_batches

    pairs = [(f"question {q}", f"candidate {q}.{k}" + "x" * (q % 7), float(k == 0)) for q in range(300)
             for k in range(1 + q % 5)]  # fmt: skip
    batches = question_batches(pairs)
    assert batches == question_batches(pairs) != question_batches(pairs, seed=1)
    assert sorted(i for batch in batches for i in batch) == list(range(len(pairs)))
    assert max(len(batch) for batch in batches) <= BATCH
    home = {pairs[i][0]: n for n, batch in enumerate(batches) for i in batch}
    assert all(home[pairs[i][0]] == n for n, batch in enumerate(batches) for i in batch)


def test_listwise_loss_adds_each_questions_softmax_loss() -> None:
    """``fitting.reader._with_listwise``: the pairs' loss plus the weight times the mean, over questions with
    a positive and a negative, of -log of the positives' softmax share; a question with no negative or no
    positive adds nothing."""
    import math

    import torch

    from fitting.reader import _with_listwise

    logits = torch.tensor([2.0, 0.0, 1.0, 3.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    questions = ["a", "a", "a", "b", "b", "c"]  # b has no negative, c no positive: only a adds a term
    share_a = math.exp(2.0) / (math.exp(2.0) + 1.0 + math.exp(1.0))
    got = _with_listwise(torch.tensor(0.25), logits, labels, questions, 0.5)
    assert float(got) == pytest.approx(0.25 + 0.5 * -math.log(share_a), abs=1e-6)
    mixed = ["a", "a", "a", "b", "c", "c"]  # now b has only a positive, c a positive and a negative
    share_c = math.exp(-1.0) / (math.exp(-1.0) + math.exp(0.5))
    got = _with_listwise(torch.tensor(0.0), logits, labels, mixed, 1.0)
    assert float(got) == pytest.approx((-math.log(share_a) - math.log(share_c)) / 2, abs=1e-6)
    assert float(_with_listwise(torch.tensor(0.7), logits, labels * 0, questions, 1.0)) == pytest.approx(0.7)


def test_the_cross_encoder_is_trained_on_candidates_read_after_their_headings(tmp_path: Path) -> None:
    """``with_headings`` puts each candidate after its headings as the engine reads it (``qa.reader.read_as``),
    a candidate at a document's top alone; texts kept before headings were are refused, not read bare; the
    headings survive the texts' round trip through the cache."""
    from fitting.reader import with_headings
    from fitting.tables import load_texts, save_texts

    texts = Texts(["q?"], ["(1) In general. An alien may apply.", "Top text."], ["§ 1158. Asylum › (a) Authority", ""])
    assert with_headings(texts).candidates == ["§ 1158. Asylum › (a) Authority: (1) In general. An alien may apply.",
                                               "Top text."]  # fmt: skip
    assert with_headings(texts).headings == texts.headings
    save_texts("fixture", texts, tmp_path)
    assert load_texts("fixture", tmp_path) == texts
    with pytest.raises(ValueError, match="no headings"):
        with_headings(Texts(texts.questions, texts.candidates))


# --- gold spans covered by half -----------------------------------------------------------------------


def test_by_half_counts_the_half_columns_as_right_and_nothing_else() -> None:
    """``by_half`` swaps the half columns in for containment's; a table without them, or whose half columns
    are containment's, gives None (the report then has nothing to add for it)."""
    table = fixture_table("a", 1, questions=10)
    assert by_half(table) is None
    assert by_half(dataclasses.replace(table, half=table.contained, pair_half=table.pair_contained)) is None
    half = np.ones_like(table.contained)
    swapped = by_half(dataclasses.replace(table, half=half, pair_half=half))
    assert swapped is not None
    assert swapped.contained.tolist() == half.tolist() and swapped.pair_contained.tolist() == half.tolist()
    assert swapped.label.tolist() == table.label.tolist()
    assert model_figures(fit([table], model="m"), swapped, 0.0).picked == 1.0


def test_half_columns_survive_a_round_trip_and_a_reread(tmp_path: Path) -> None:
    """The half columns are written and read back with the table, and a reread keeps them with its rows."""
    table = read_table("a", 1, questions=4)
    half = (np.arange(len(table.label)) % 2).astype(np.int8)
    table = dataclasses.replace(table, half=half, pair_half=1 - half)
    back = load_table("a", Path(save_table(table, tmp_path)).parent)
    assert back.half is not None and back.pair_half is not None
    assert back.half.tolist() == half.tolist() and back.pair_half.tolist() == (1 - half).tolist()
    reread = reread_table(back, fit([back], model="m"), 2)
    kept = [int(np.flatnonzero((back.features == row[: len(FEATURES)]).all(axis=1))[0]) for row in reread.features]
    assert reread.half is not None and reread.half.tolist() == half[kept].tolist()


def test_a_rebuilt_table_keeps_the_scores_of_one_that_read_the_same_texts(tmp_path: Path) -> None:
    """A rebuild whose questions, candidates and headings are the committed table's keeps its cross-encoder
    scores (they are the fold models' reading of those texts); other texts, or no table before, keep none."""
    scored = read_table("a", 1, questions=3)
    texts = Texts(["q0", "q1", "q2"], [f"c{i}" for i in range(len(scored.label))], ["h"] * len(scored.label))
    tables, folder = tmp_path / "tables", tmp_path / "texts"
    rebuilt = dataclasses.replace(scored, reader=None)
    assert kept_scores(rebuilt, texts, tables, folder)[0].reader is None  # nothing written yet
    save_table(scored, tables)
    save_texts("a", texts, folder)
    kept, _ = kept_scores(rebuilt, texts, tables, folder)
    assert kept.reader is not None and kept.reader.tolist() == scored.reader.tolist()  # type: ignore[union-attr]
    other = dataclasses.replace(texts, candidates=[*texts.candidates[:-1], "changed"])
    assert kept_scores(rebuilt, other, tables, folder)[0].reader is None


def test_the_half_report_measures_each_set_with_offsets_by_its_own_folds() -> None:
    """The report has a row for each set whose half columns say more than containment, and none for the rest;
    each row is the gated figures of that set's fold (rankers, threshold and gate fitted without it) counted
    by containment, then by the half columns."""
    tables = [read_table("a", 1), read_table("b", 2), read_table("c", 3)]
    half = np.zeros_like(tables[1].contained)  # "b": no quote covers a gold span
    tables[1] = dataclasses.replace(tables[1], half=half, pair_half=half)
    folds = reranker_folds(tables, model="m", count=2)
    gated = leave_one_out_gated(tables, model="m", count=2, folds=folds)
    rows = [line.split("|") for line in half_report(folds, gated).splitlines() if "|" in line][2:]  # past the header
    assert [r[0].strip() for r in rows] == ["b"]
    whole, _, _, gate = gated["b"]
    halved = by_half(tables[1])
    assert halved is not None
    counted, _ = gated_figures(halved, Gated.of(halved, folds[1].first, folds[1].second), gate, folds[1].threshold)
    assert counted.picked == counted.containment == 0.0 < whole.picked
    assert rows[0][2].split() == [f"{whole.picked:.3f}", "/", "0.000"]
    assert rows[0][3].split() == [f"{whole.containment:.3f}", "/", "0.000"]


def test_committed_span_sets_carry_the_half_columns() -> None:
    """XQuAD's and PolicyQA's tables (gold with offsets) carry the half columns, and a candidate whose span
    holds a whole gold span (its label) covers half of it."""
    for name in ("xquad", "policyqa"):
        table = load_table(name)
        assert table.half is not None and table.pair_half is not None, name
        assert (table.half[table.label > 0] == 1).all(), name
        assert by_half(table) is not None, name
