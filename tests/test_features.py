"""Tests for ``qa.features``: the window cosine, heading match, lead-in spans and every column of a candidate's row."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from qa import features
from qa.build import build_index
from qa.embed import HashEmbedder
from qa.features import COLUMN, FEATURES, candidate_features, heading_match, through_lead_in, window_similarity
from qa.index import VectorIndex
from qa.ingest import parse_document
from qa.question import Profile, profile
from qa.tokens import tokenize
from qa.types import Hit, Passage, Span

# --- window_similarity ------------------------------------------------------------------------------


def _window(vectors: list[list[float]], question: list[float]) -> npt.NDArray[np.float32]:
    v = np.asarray(vectors, dtype=np.float32)
    return window_similarity(v, v @ np.asarray(question, dtype=np.float32))


def test_window_joins_a_unit_with_its_better_neighbour() -> None:
    """cos(q, a+b) = (q.a + q.b) / sqrt(2 + 2 a.b): a weak unit between two strong ones rises to 1/sqrt(2)."""
    best = _window([[1, 0], [0, 1], [1, 0]], [1, 0])
    assert best.tolist() == pytest.approx([1.0, 1 / math.sqrt(2), 1.0])
    assert best.dtype == np.float32


def test_window_never_lowers_a_unit_below_its_own_cosine() -> None:
    """A neighbour pointing the other way joins to 0, so each unit keeps its own cosine."""
    assert _window([[1, 0], [-1, 0]], [1, 0]).tolist() == pytest.approx([1.0, 0.0])


def test_window_of_identical_neighbours_is_their_cosine() -> None:
    """Joining a unit to a copy of itself adds nothing: (s + s) / sqrt(4) = s."""
    assert _window([[0.6, 0.8], [0.6, 0.8]], [1, 0]).tolist() == pytest.approx([0.6, 0.6])


def test_window_of_a_lone_unit_is_its_own_cosine() -> None:
    """Without a neighbour the window is the unit alone."""
    assert _window([[0.6, 0.8]], [0, 1]).tolist() == pytest.approx([0.8])
    empty = np.zeros((0, 2), dtype=np.float32)
    assert window_similarity(empty, np.zeros(0, dtype=np.float32)).shape == (0,)


# --- heading_match ----------------------------------------------------------------------------------


def _passage(section_path: tuple[str, ...]) -> Passage:
    return Passage("p", "doc.md", section_path, 0, 4, "Text", units=(Span(0, 4),))


@pytest.mark.parametrize(
    ("section_path", "expected"),
    [
        (("Budget", "Annual Salaries of Analysts"), 2 / 3),  # the nearest heading only: annual, salari, analyst
        (("Salaries of Analysts", "Budget"), 0.0),  # an outer heading does not count
        ((), 0.0),  # no heading
        (("The Of",), 0.0),  # a heading of stop words only
    ],
)
def test_heading_match(section_path: tuple[str, ...], expected: float) -> None:
    """The share of the nearest heading's words that the question uses."""
    question = frozenset(tokenize("What is the salary of an analyst?"))
    assert heading_match(question, _passage(section_path)) == pytest.approx(expected)


# --- through_lead_in --------------------------------------------------------------------------------

LIST = "The mission is to\n\n(A) prevent attacks;\n\n(B) reduce harm.\n\nIt has a budget."
LIST_UNITS = (Span(0, 17), Span(19, 39), Span(41, 57), Span(59, 75))


def _lines(text: str, *, offset: int = 0) -> Passage:
    """A passage whose units are its non-empty lines, placed at ``offset`` in its document."""
    units: list[Span] = []
    start = 0
    for line in text.split("\n"):
        if line:
            units.append(Span(offset + start, offset + start + len(line)))
        start += len(line) + 1
    return Passage("p", "doc.md", ("Section",), offset, offset + len(text), text, units=tuple(units))


def _quoted(p: Passage, span: Span) -> str:
    return p.text[span.start - p.start : span.end - p.start]


def test_lead_in_runs_on_over_the_list_it_introduces() -> None:
    """A lead-in ("The mission is to") takes the list after it, up to the unit that ends the list."""
    p = _lines(LIST)
    assert p.units == LIST_UNITS
    assert _quoted(p, through_lead_in(p, p.units[0])) == "The mission is to\n\n(A) prevent attacks;\n\n(B) reduce harm."


@pytest.mark.parametrize("unit", [1, 2, 3])
def test_units_that_do_not_lead_in_stay_alone(unit: int) -> None:
    """A list item ends its clause, and a plain sentence is its own span."""
    p = _lines(LIST)
    assert through_lead_in(p, p.units[unit]) == p.units[unit]


def test_lead_in_works_in_document_offsets() -> None:
    """Spans are document offsets: a passage that starts later gives the same text, shifted."""
    p = _lines(LIST, offset=17)
    assert through_lead_in(p, p.units[0]) == Span(17, 74)


def test_lead_in_stops_at_lead_in_chars_but_takes_one_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """LEAD_IN_CHARS bounds the run from the unit's start, yet the first unit after a lead-in is always taken."""
    p = _lines(LIST)
    monkeypatch.setattr(features, "LEAD_IN_CHARS", 40)
    assert through_lead_in(p, p.units[0]) == Span(0, 39)  # (B) would end at 57 > 40
    monkeypatch.setattr(features, "LEAD_IN_CHARS", 57)
    assert through_lead_in(p, p.units[0]) == Span(0, 57)  # exactly at the bound is inside it
    monkeypatch.setattr(features, "LEAD_IN_CHARS", 1)
    assert through_lead_in(p, p.units[0]) == Span(0, 39)


def test_caption_runs_on_over_what_it_heads() -> None:
    """A caption ("(2) Head of Department") takes the sentence under it, which does not go on."""
    p = _lines("(2) Head of Department\n\nThe Secretary is the head.\n\n(3) Functions\n\nAll are vested.")
    assert [through_lead_in(p, u) for u in p.units] == [Span(0, 50), Span(24, 50), Span(52, 82), Span(67, 82)]


def test_after_a_lead_in_one_unit_unless_a_list_follows() -> None:
    """A lead-in completed by a plain sentence stops there, even if a list item comes next."""
    p = _lines("It applies to\n\nall agencies.\n\n(A) Not a list item of it.")
    assert through_lead_in(p, p.units[0]) == Span(0, 28)


def test_a_list_under_a_caption_stops_at_the_next_caption() -> None:
    """A definition's list goes on through "(1) In general" and its items, and stops at "(2) Exceptions"."""
    text = "The term means:\n\n(1) In general\n\n(A) one thing;\n\n(B) another.\n\n(2) Exceptions\n\nNone apply."
    p = _lines(text)
    spans = [_quoted(p, through_lead_in(p, u)) for u in p.units]
    assert spans == [
        "The term means:\n\n(1) In general\n\n(A) one thing;\n\n(B) another.",
        "(1) In general\n\n(A) one thing;\n\n(B) another.",
        "(A) one thing;",
        "(B) another.",
        "(2) Exceptions\n\nNone apply.",
        "None apply.",
    ]


def test_lead_in_at_the_end_of_a_passage_is_alone() -> None:
    """A lead-in with nothing after it in its passage is its own span."""
    p = _lines("It is the following:")
    assert through_lead_in(p, p.units[0]) == Span(0, 20)


# --- candidate_features -----------------------------------------------------------------------------

DOC_A = (
    b"# Fusion Centers\n\n## Salaries\n\n"
    b"A fusion center analyst earns 60,000 dollars a year. The centers share data with agencies.\n\n"
    b"## Mission\n\nThe mission of the Department is to\n\n(A) prevent attacks;\n\n(B) reduce harm.\n"
)
DOC_B = b"# Ports\n\n## Shipping\n\nPorts handled cargo (2008-2021). Ships dock at night.\n"
# Candidates in retrieval order: the Salaries passage (rank 0), Shipping (rank 1), Mission (rank 2).
SALARIES = ["A fusion center analyst earns 60,000 dollars a year.", "The centers share data with agencies."]
SHIPPING = ["Ports handled cargo (2008-2021).", "Ships dock at night."]
MISSION = ["The mission of the Department is to", "(A) prevent attacks;", "(B) reduce harm."]
UNITS = [*SALARIES, *SHIPPING, *MISSION]


@pytest.fixture(scope="module")
def index() -> VectorIndex:
    return build_index([parse_document("a.md", DOC_A), parse_document("b.md", DOC_B)], HashEmbedder())


@pytest.fixture(scope="module")
def hits(index: VectorIndex) -> list[Hit]:
    salaries, mission, shipping = index.passages
    return [Hit(salaries, 0.9, 0, 0.8, 4.0), Hit(shipping, 0.5, 1, 0.4, 1.0), Hit(mission, 0.1, 2, 0.2, 0.0)]


def _asked(index: VectorIndex, question: str) -> Profile:
    """The question weighed by shares of the corpus's highest IDF (C); a word not listed weighs C."""
    c = index.idf_ceiling
    idf = {"salari": 0.4 * c, "fusion": 0.2 * c, "center": 0.1 * c, "analyst": 0.3 * c, "earn": 0.5 * c}
    return profile(question, idf, c, index.vocabulary)


SALARY = "What is the salary of a fusion center analyst?"  # weights: salari .4, fusion .2, center .1, analyst .3
EARN = "How much does a fusion center analyst earn in Texas?"  # total 2.1 C; "Texas" is nowhere
CARGO = "What cargo did ports handle in 2024?"  # "2024" is nowhere


def _features(index: VectorIndex, hits: list[Hit], question: str, **kwargs: int) -> npt.NDArray[np.float32]:
    query = index.unit_vectors_of(0)[0]  # the first Salaries unit's own vector
    return candidate_features(index, hits, _asked(index, question), query, **kwargs)[1]


def test_the_index_is_as_the_features_tests_expect(index: VectorIndex) -> None:
    """The hand-built corpus chunks into the three passages the expected rows below are written for."""
    units = [[p.text[u.start - p.start : u.end - p.start] for u in p.units] for p in index.passages]
    assert units == [SALARIES, MISSION, SHIPPING]
    assert [p.section_path for p in index.passages] == [("Salaries",), ("Mission",), ("Shipping",)]


def test_candidates_come_in_retrieval_order(index: VectorIndex, hits: list[Hit]) -> None:
    """Every unit of each hit, hits in the given order, units in passage order, with the hit's rank."""
    found, matrix = candidate_features(index, hits, _asked(index, SALARY), None)
    assert [c.passage.text[c.unit.start - c.passage.start : c.unit.end - c.passage.start] for c in found] == UNITS
    assert [c.rank for c in found] == [0, 0, 1, 1, 2, 2, 2]
    assert matrix.shape == (7, len(FEATURES)) and matrix.dtype == np.float32
    assert len(COLUMN) == len(FEATURES)


def test_a_copy_is_not_a_candidate_again() -> None:
    """A unit whose quoted words (whitespace folded) repeat a better-retrieved candidate's is left out, so a
    copied document does not split the answer's share; the rows of the first copy are the single copy's,
    and the copy's other sentences stay candidates. Pins a defect: with a copy in the corpus, "When does the
    shuttle leave?" went from confidence 0.96 to 0.31."""
    copy = DOC_B.replace(b"Ships dock at night.", b"Ships  dock\nat night. Crews rest by day.")
    index = build_index([parse_document("b.md", DOC_B), parse_document("c.md", copy)], HashEmbedder())
    first, second = index.passages
    hits = [Hit(first, 0.9, 0, 0.8, 4.0), Hit(second, 0.9, 1, 0.8, 4.0)]
    question = _asked(index, CARGO)
    found, matrix = candidate_features(index, hits, question, None)
    texts = [index.documents[c.passage.doc_id].text[c.span.start : c.span.end] for c in found]
    assert texts == [*SHIPPING, "Crews rest by day."]
    assert [(c.passage.doc_id, c.position) for c in found] == [("b.md", 0), ("b.md", 1), ("c.md", 2)]
    alone, alone_matrix = candidate_features(index, hits[:1], question, None)
    assert np.array_equal(matrix[:2, : COLUMN["missing_weight"]], alone_matrix[:, : COLUMN["missing_weight"]])
    # The unit after a skipped one still reads the skipped one as its neighbour.
    _, every = candidate_features(
        build_index([parse_document("c.md", copy)], HashEmbedder()), [Hit(second, 0.9, 0, 0.8, 4.0)], question, None
    )
    assert matrix[2, COLUMN["neighbour_coverage"]] == every[2, COLUMN["neighbour_coverage"]]


def test_the_same_words_under_another_heading_are_another_candidate() -> None:
    """A row of two timetables ("Monday | 9 to 5 |" for the pool and for the library) is two answers: only
    the same words under the same headings and table header are a copy."""
    source = b"# Hours\n\n## %s\n\n| Day | Open |\n|---|---|\n| Monday | 9 to 5 |\n"
    index = build_index(
        [parse_document("pool.md", source % b"Pool"), parse_document("library.md", source % b"Library")],
        HashEmbedder(),
    )
    hits = [Hit(p, 0.9, rank, 0.8, 4.0) for rank, p in enumerate(index.passages)]
    found, _ = candidate_features(index, hits, _asked(index, "When is the library open on Monday?"), None)
    assert sorted(c.passage.doc_id for c in found) == ["library.md", "pool.md"]


def test_candidate_spans_run_on_over_lead_ins(index: VectorIndex, hits: list[Hit]) -> None:
    """A candidate's span is its unit run on by through_lead_in: the Mission lead-in takes its list."""
    found, _ = candidate_features(index, hits, _asked(index, SALARY), None)
    mission = found[4]
    assert mission.span == Span(mission.unit.start, found[6].unit.end)
    assert [c.span == c.unit for c in found] == [True, True, True, True, False, True, True]


def test_passages_limits_the_hits_drawn_from(index: VectorIndex, hits: list[Hit]) -> None:
    """Only the best ``passages`` hits give candidates."""
    found, matrix = candidate_features(index, hits, _asked(index, SALARY), None, passages=1)
    assert [c.rank for c in found] == [0, 0] and matrix.shape == (2, len(FEATURES))


def test_no_hits_give_an_empty_matrix(index: VectorIndex) -> None:
    """No hits: no candidates, and a matrix with no rows but every column."""
    found, matrix = candidate_features(index, [], _asked(index, SALARY), None)
    assert found == [] and matrix.shape == (0, len(FEATURES))


def test_without_a_query_vector_the_cosines_are_zero(index: VectorIndex, hits: list[Hit]) -> None:
    """No embedding: similarity, window and the gap are 0; the order keeps retrieval order."""
    _, matrix = candidate_features(index, hits, _asked(index, SALARY), None)
    for name in ("similarity", "window", "similarity_gap"):
        assert matrix[:, COLUMN[name]].tolist() == [0.0] * 7
    assert matrix[:, COLUMN["similarity_order"]].tolist() == pytest.approx([1 / (1 + i) for i in range(7)])


def test_similarity_columns(index: VectorIndex, hits: list[Hit]) -> None:
    """Cosine with each unit, its gap to the best (0 for the best) and 1 / (1 + place) by cosine."""
    matrix = _features(index, hits, SALARY)
    query = index.unit_vectors_of(0)[0]
    rows = [0, 1, 5, 6, 2, 3, 4]  # unit rows of Salaries (passage 0), Shipping (2), Mission (1)
    sims = np.concatenate([index.unit_vectors_of(r) for r in range(index.n_rows)])[rows] @ query
    similarity = matrix[:, COLUMN["similarity"]]
    assert similarity.tolist() == pytest.approx(sims.tolist(), abs=1e-6)
    assert similarity[0] == pytest.approx(1.0, abs=1e-6)
    assert matrix[:, COLUMN["similarity_gap"]].tolist() == pytest.approx((similarity - similarity.max()).tolist())
    assert matrix[0, COLUMN["similarity_gap"]] == 0.0 and matrix[0, COLUMN["similarity_order"]] == 1.0
    places = np.argsort(np.argsort(-similarity, kind="stable"), kind="stable")
    assert matrix[:, COLUMN["similarity_order"]].tolist() == pytest.approx((1 / (1 + places)).tolist())
    assert (matrix[:, COLUMN["window"]] >= similarity - 1e-6).all()  # the window is never below the unit


def test_coverage_columns(index: VectorIndex, hits: list[Hit]) -> None:
    """Shares of the question's IDF weight: in the unit, with its heading, in the unit before; gap and order."""
    matrix = _features(index, hits, SALARY)

    def column(name: str) -> list[float]:
        values: list[float] = matrix[:, COLUMN[name]].tolist()
        return values

    assert column("coverage") == pytest.approx([0.6, 0.1, 0, 0, 0, 0, 0])  # fusion+center+analyst; "centers"
    assert column("context_coverage") == pytest.approx([1.0, 0.5, 0, 0, 0, 0, 0])  # + "salari" of "Salaries"
    assert column("neighbour_coverage") == pytest.approx([0, 1.0, 0, 0, 0, 0, 0])  # the unit before's, same passage
    assert column("coverage_gap") == pytest.approx([0, -0.5, -0.6, -0.6, -0.6, -0.6, -0.6])
    assert column("coverage_order") == pytest.approx([1 / (1 + i) for i in range(7)])  # ties in retrieval order
    assert column("rarest") == [1, 1, 0, 0, 0, 0, 0]  # "salari", the rarest, in the Salaries heading
    assert column("bigrams") == pytest.approx([2 / 3, 0, 0, 0, 0, 0, 0])  # fusion-center, center-analyst of 3
    assert column("novelty") == pytest.approx([4 / 7, 3 / 4, 1, 1, 1, 1, 1])
    assert column("heading") == [1, 1, 0, 0, 0, 0, 0]
    assert column("passage_missing") == pytest.approx([0, 0, 0.4, 0.4, 0.4, 0.4, 0.4])  # "salari" at .4 C
    assert column("missing_weight") == [0.0] * 7  # every question word is in some candidate passage


def test_coverage_order_follows_context_coverage(index: VectorIndex, hits: list[Hit]) -> None:
    """The best-covered unit is first by coverage even when it is not first by retrieval."""
    matrix = _features(index, hits, CARGO)
    assert matrix[:, COLUMN["coverage"]].tolist() == pytest.approx([0, 0, 0.75, 0, 0, 0, 0])  # cargo, port, handl
    assert matrix[:, COLUMN["coverage_gap"]].tolist() == pytest.approx([-0.75, -0.75, 0, -0.75, -0.75, -0.75, -0.75])
    assert matrix[:, COLUMN["coverage_order"]].tolist() == pytest.approx([1 / 2, 1 / 3, 1, 1 / 4, 1 / 5, 1 / 6, 1 / 7])


def test_type_and_attribute_columns(index: VectorIndex, hits: list[Hit]) -> None:
    """type_found/type_missing for a quantity question; attribute_found/missing count the heading too."""
    quantity = _features(index, hits, EARN)
    assert quantity[:, COLUMN["type_found"]].tolist() == [1, 0, 1, 0, 0, 0, 0]  # 60,000 and 2008-2021
    assert quantity[:, COLUMN["type_missing"]].tolist() == [0, 1, 0, 1, 1, 1, 1]
    assert quantity[:, COLUMN["attribute_found"]].tolist() == [0] * 7  # no attribute asked
    assert quantity[:, COLUMN["attribute_missing"]].tolist() == [0] * 7
    salary = _features(index, hits, SALARY)
    assert salary[:, COLUMN["type_found"]].tolist() == [0] * 7  # no answer type asked
    assert salary[:, COLUMN["type_missing"]].tolist() == [0] * 7
    assert salary[:, COLUMN["attribute_found"]].tolist() == [1, 1, 0, 0, 0, 0, 0]  # "Salaries" heads both
    assert salary[:, COLUMN["attribute_missing"]].tolist() == [0, 0, 1, 1, 1, 1, 1]


def test_question_wide_columns(index: VectorIndex, hits: list[Hit]) -> None:
    """unknown_names and missing_weight are the same on every row; passage_missing is per passage."""
    matrix = _features(index, hits, EARN)
    assert matrix[:, COLUMN["unknown_names"]].tolist() == [1] * 7  # "Texas"
    assert matrix[:, COLUMN["missing_weight"]].tolist() == pytest.approx([1 / 2.1] * 7)  # texa: C of 2.1 C
    assert matrix[:, COLUMN["passage_missing"]].tolist() == pytest.approx([1.0] * 7)  # texa, the ceiling
    assert _features(index, hits, SALARY)[:, COLUMN["unknown_names"]].tolist() == [0] * 7


def test_dated_elsewhere_column(index: VectorIndex, hits: list[Hit]) -> None:
    """Only the unit dated 2008-2021 is dated elsewhere for a question about 2024."""
    matrix = _features(index, hits, CARGO)
    assert matrix[:, COLUMN["dated_elsewhere"]].tolist() == [0, 0, 1, 0, 0, 0, 0]


def test_shape_and_retrieval_columns(index: VectorIndex, hits: list[Hit]) -> None:
    """length, first_unit, leads_in from the unit; passage_similarity, fused_rank, lexical from the hit."""
    matrix = _features(index, hits, SALARY)
    assert matrix[:, COLUMN["length"]].tolist() == pytest.approx([math.log1p(len(u) / 100) for u in UNITS])
    assert matrix[:, COLUMN["first_unit"]].tolist() == [1, 0, 1, 0, 1, 0, 0]
    assert matrix[:, COLUMN["leads_in"]].tolist() == [0, 0, 0, 0, 1, 0, 0]  # "... the Department is to"
    assert matrix[:, COLUMN["passage_similarity"]].tolist() == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.2])
    assert matrix[:, COLUMN["fused_rank"]].tolist() == pytest.approx([1, 1, 1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 3])
    assert matrix[:, COLUMN["lexical"]].tolist() == pytest.approx([1, 1, 0.25, 0.25, 0, 0, 0])  # over the best's
