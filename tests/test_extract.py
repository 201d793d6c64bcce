"""Tests for ``qa.extract`` and ``qa.abstain``: answer types, coverage, spans, citations, reranking, evidence."""

from __future__ import annotations

import pytest

from qa import extract
from qa.abstain import (
    NO_ANSWER,
    P_MISSING_TYPE,
    P_REFUSE,
    dated_elsewhere,
    evidence,
    names_something_new,
    refusal_reason,
    unknown_names,
)
from qa.extract import Candidate, answer_span, answer_type_match, asks_for_type, citable, coverage, expands, rerank
from qa.tokens import Vocabulary, tokenize
from qa.types import Hit, Passage, Span

TEXT = "Alpha is first. Beta is second. Gamma is third."
UNITS = (Span(0, 15), Span(16, 31), Span(32, 47))


def passage(pid: str, units: tuple[Span, ...] = UNITS) -> Passage:
    return Passage(pid, "doc.txt", ("Section",), 0, len(TEXT), TEXT, units=units)


def candidate(p: Passage, unit: int, score: float, rank: int = 0) -> Candidate:
    return Candidate(p, p.units[unit], score, similarity=0.0, coverage=0.0, rank=rank)


@pytest.mark.parametrize(
    ("question", "unit", "expected"),
    [
        ("How many agencies take part?", "Over 3,000 agencies participate.", 1.0),
        ("How many agencies take part?", "Many agencies participate.", 0.0),
        ("When did 287(g) start?", "The 287(g) program is old.", 0.0),  # only the question's own number
        ("When did 287(g) start?", "It began in 1996.", 1.0),
        ("Who runs the program?", "It is run by the agency, led by Smith.", 1.0),
        ("Who runs the program?", "It is run by the agency.", 0.0),
        ("What is the program?", "It began in 1996.", 0.0),  # no answer type asked
        (
            "What does the acronym IIRIRA stand for?",
            "Under the Illegal Immigration Reform and Immigrant Responsibility Act (IIRIRA), agencies share data.",
            1.0,
        ),  # fmt: skip
        ("What does the acronym IIRIRA stand for?", "IIRIRA authorizes 287(g) agreements since 1996.", 0.0),
        ("What did the LMP acronym stand for?", "The Lunar Module Pilot sat on the right.", 1.0),
        ("What is DoD short for?", "It reports to the Department of Defense.", 1.0),
        ("What is DoD short for?", "It reports to the department in 2020.", 0.0),  # a number is no expansion
        ("How long is the term?", "(1) A Director of the Service.", 0.0),  # a list item's number is no quantity
        ("How long is the term?", "(1) A Director serves 5 years.", 1.0),
        ("When did it start?", "(2025) It began.", 1.0),  # a year in brackets is no list marker
    ],
)
def test_answer_type_match(question: str, unit: str, expected: float) -> None:
    assert answer_type_match(question, unit) == expected


def test_asks_for_type() -> None:
    assert asks_for_type("What does the acronym IIRIRA stand for?")
    assert asks_for_type("How many agencies?") and asks_for_type("Who runs it?")
    assert not asks_for_type("What does the program stand for?")  # no acronym: a question about values


def test_expands_needs_the_initials_in_a_row() -> None:
    assert expands("ICE", "Immigration and Customs Enforcement (ICE) shares data.")
    assert not expands("ICE", "Immigration officers and Customs staff handle Enforcement.")
    assert not expands("ICE", "ICE shares data.")  # the acronym alone is not its expansion


def test_coverage_weighs_words_and_context() -> None:
    weights = {"fusion": 3.0, "center": 1.0}
    assert coverage(weights, {"fusion", "center"}) == 1.0
    assert coverage(weights, {"fusion"}) == 0.75
    assert coverage(weights, set(), {"center"}) == 0.25  # context words count at CONTEXT_WEIGHT (1.0)
    assert coverage({}, {"fusion"}) == 0.0


def test_answer_span_joins_adjacent_near_ties_only() -> None:
    p = passage("p1")
    assert answer_span([candidate(p, 1, 0.90), candidate(p, 0, 0.87)]) == Span(0, 31)
    assert answer_span([candidate(p, 0, 0.90), candidate(p, 2, 0.89)]) == Span(0, 15)  # not adjacent
    assert answer_span([candidate(p, 0, 0.90), candidate(p, 1, 0.80)]) == Span(0, 15)  # not a near tie
    other = passage("p2")
    assert answer_span([candidate(p, 0, 0.90), candidate(other, 1, 0.90)]) == Span(0, 15)  # another passage
    with pytest.raises(ValueError, match="no candidate"):
        answer_span([])


LIST = "The mission is to\n\n(A) prevent attacks;\n\n(B) reduce harm.\n\nIt has a budget."
LIST_UNITS = (Span(0, 17), Span(19, 39), Span(41, 57), Span(59, 75))


def test_answer_span_runs_on_over_the_list_a_unit_leads_into() -> None:
    p = Passage("p", "doc.md", ("Mission",), 0, len(LIST), LIST, units=LIST_UNITS)
    span = answer_span([candidate(p, 0, 0.9)])
    assert LIST[span.start : span.end] == "The mission is to\n\n(A) prevent attacks;\n\n(B) reduce harm."
    assert answer_span([candidate(p, 1, 0.9)]) == LIST_UNITS[1]  # a list item ends its clause
    assert answer_span([candidate(p, 3, 0.9)]) == LIST_UNITS[3]


def test_answer_span_takes_at_least_one_unit_and_stops_at_lead_in_chars(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Passage("p", "doc.md", ("Mission",), 0, len(LIST), LIST, units=LIST_UNITS)
    monkeypatch.setattr(extract, "LEAD_IN_CHARS", 40)
    assert answer_span([candidate(p, 0, 0.9)]) == Span(0, 39)
    monkeypatch.setattr(extract, "LEAD_IN_CHARS", 1)
    assert answer_span([candidate(p, 0, 0.9)]) == Span(0, 39)  # the first item even when it is long


def test_answer_span_runs_from_a_caption_over_what_it_heads() -> None:
    text = "(2) Head of Department\n\nThe Secretary is the head.\n\n(3) Functions\n\nAll are vested."
    units = (Span(0, 22), Span(24, 50), Span(52, 65), Span(67, 82))
    p = Passage("p", "doc.md", ("Secretary",), 0, len(text), text, units=units)
    assert answer_span([candidate(p, 0, 0.9)]) == Span(0, 50)
    assert answer_span([candidate(p, 1, 0.9)]) == Span(24, 50)


def test_answer_span_after_a_lead_in_takes_one_unit_unless_a_list_follows() -> None:
    text = "It applies to\n\nall agencies.\n\n(A) Not a list item of it."
    units = (Span(0, 13), Span(15, 28), Span(30, 56))
    p = Passage("p", "doc.md", ("Scope",), 0, len(text), text, units=units)
    assert answer_span([candidate(p, 0, 0.9)]) == Span(0, 28)


def test_citable_puts_the_answer_first_and_skips_units_inside_it() -> None:
    p = passage("p1")
    ranked = [candidate(p, 0, 0.9), candidate(p, 1, 0.88), candidate(p, 2, 0.5)]
    chosen = citable(ranked, Span(0, 31), limit=3)
    assert [c.unit for c in chosen] == [Span(0, 15), Span(32, 47)]
    assert [c.unit for c in citable(ranked, Span(0, 15), limit=2)] == [Span(0, 15), Span(16, 31)]


def test_rerank_orders_hits_by_their_best_unit_then_by_retrieval_rank() -> None:
    a, b, c, d = (passage(pid) for pid in "abcd")
    hits = [Hit(a, 0.9, 0), Hit(b, 0.8, 1), Hit(c, 0.7, 2), Hit(d, 0.6, 3)]
    ranked = [candidate(c, 0, 0.95, rank=2), candidate(a, 1, 0.90), candidate(c, 2, 0.85, rank=2)]
    assert [h.passage.id for h in rerank(hits, ranked)] == ["c", "a", "b", "d"]
    assert rerank(hits, []) == hits
    assert rerank([], ranked) == []


# The corpus words of the evidence tests: "texas" is not among them.
VOCABULARY = Vocabulary(["program", "screen", "peopl", "2019", "2024"])


def unit_candidate(text: str, score: float = 0.8) -> Candidate:
    p = Passage("p", "doc.txt", (), 0, len(text), text, units=(Span(0, len(text)),))
    return Candidate(p, p.units[0], score, similarity=0.0, coverage=0.0, rank=0)


@pytest.mark.parametrize(
    ("question", "unit", "penalty"),
    [
        ("When did the program start?", "It began in 1996.", 0.0),
        ("When did the program start?", "It began in March.", P_MISSING_TYPE),  # a date, but no number
        ("When did the program start?", "It began after the reform.", P_REFUSE + P_MISSING_TYPE),
        ("In what year did it start?", "It began after the reform.", P_REFUSE + P_MISSING_TYPE),
        ("What happened when it started?", "It began after the reform.", 0.0),  # "when" joins clauses: no date asked
        ("It started when?", "It began after the reform.", P_MISSING_TYPE),  # a time asked, not first: no refusal
        ("How many agencies take part?", "Agencies take part.", P_MISSING_TYPE),
        ("What does the program do in Texas?", "It screens people.", P_REFUSE),  # "texas" is not indexed
        ("What does the program do?", "It screens people.", 0.0),
        ("Which data broker companies does it use?", "It screens people.", P_REFUSE),
        ("Which companies does it use?", "It screens people, using Acme data.", 0.0),
        ("Which companies does it use?", "Acme screens people.", P_REFUSE),  # first word: not a name
        ("Who is the current director of the program?", "It screens people.", P_REFUSE + P_MISSING_TYPE),
        ("Who is the director of the program?", "Its directors, led by Jones, screen people.", 0.0),
        ("Who were two of the program's leaders?", "It screens people.", P_MISSING_TYPE),  # not a role question
        ("What did the program cost in 2024?", "It cost $2 million (2008-2021).", P_REFUSE),
        ("What did the program cost in 2019?", "It cost $2 million (2008-2021).", 0.0),  # inside the range
        ("What did the program cost in 2024?", "It cost $2 million.", 0.0),  # the unit is not dated
    ],
)
def test_evidence_penalties(question: str, unit: str, penalty: float) -> None:
    assert evidence(question, unit_candidate(unit), VOCABULARY) == pytest.approx(0.8 - penalty)


CORPUS = "Thomas de Maizière met the Scottish Parliament (MSPs) in India in 2019, at the Super Bowl, and 287(g)."


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("What did Maiziere say?", []),  # accents forgiven
        ("What did Thomas Smithers say?", []),  # one word of the name is known
        ("Which Indian leader spoke?", []),  # one letter off
        ("Who sang at the Superbowl?", []),  # a compound
        ("Who sits in the SP?", []),  # too short to judge
        ("Who won in Texas?", ["Texas"]),
        ("Who won the FIFA World Cup?", ["FIFA World Cup"]),
        ("Texas is where?", []),  # the first word may be capitalised for the sentence alone
        ("What happened in 2019?", []),
        ("What happened in 2024 and 1,250 times?", ["2024", "1,250"]),
        ("What about the 80s, or 287(g)?", []),  # short numbers are too common to judge
    ],
)
def test_unknown_names(question: str, unknown: list[str]) -> None:
    assert unknown_names(question, Vocabulary(tokenize(CORPUS))) == unknown


def test_names_something_new() -> None:
    assert names_something_new("Which company?", "The deal went to BSkyB in 2010.")
    assert not names_something_new("Which company runs ICE?", "The agency runs ICE.")  # only the question's name
    assert not names_something_new("Which company?", "Private companies sell data.")  # first word only
    # The same name with either apostrophe is not new.
    assert not names_something_new("Which company did California's law name?", "It said: California’s law applies.")
    assert names_something_new("Which company did California's law name?", "It said: Oracle’s law applies.")


@pytest.mark.parametrize(
    ("question", "unit", "reason"),
    [
        ("What does the program do in Texas?", "It screens people.", "these documents never mention “Texas”"),
        ("When did the program start?", "It began after the reform.", "no passage gives the date asked for"),
        ("Which firms does it use?", "It screens people.", "no passage names the company or organisation asked for"),
        ("Who is the director of the program?", "It screens people.", "no passage mentions the director asked about"),
        ("What does the program do?", "It screens people.", NO_ANSWER),
        ("What did it cost in 2024?", "It cost $2 million (2008-2021).", "the closest passage is about another period"),
    ],
)
def test_refusal_reason_names_the_first_check_failed(question: str, unit: str, reason: str) -> None:
    assert refusal_reason(question, unit_candidate(unit), VOCABULARY) == reason


def test_refusal_reason_without_a_candidate() -> None:
    assert refusal_reason("Who won in Texas?", None, Vocabulary([])) == "these documents never mention “Texas”"
    assert refusal_reason("what now?", None, Vocabulary([])) == NO_ANSWER


def test_dated_elsewhere_looks_for_the_year_in_the_whole_passage() -> None:
    unit = "Budget (2008-2021): $2.8 billion."
    assert dated_elsewhere("What was the budget in 2024?", unit, unit)
    assert not dated_elsewhere("What was the budget in 2024?", unit, unit + " Since June 2024, more.")
    assert not dated_elsewhere("What was the budget in 1998?", "In 1998–99 it grew.", "In 1998–99 it grew.")
    assert not dated_elsewhere("What was the budget?", unit, unit)
