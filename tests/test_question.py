"""Tests for ``qa.question``: answer types, attributes, acronyms, years, unknown names, answer kinds in text, profiles.

Cases marked ``xfail(strict=True)`` pin a known bug in the module: each says what is wrong and passes
(failing the run) once the module is fixed, so the mark is then removed.
"""

from __future__ import annotations

import pytest

from qa.question import (
    Profile,
    answer_type,
    attribute_of,
    dated_elsewhere,
    expands,
    gives_type,
    profile,
    unknown_names,
    year_ranges,
)
from qa.tokens import Vocabulary, tokenize


def bug(reason: str) -> pytest.MarkDecorator:
    """A known bug of qa.question: the case states the right behaviour and fails until it is fixed."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


def asked(question: str) -> Profile:
    """A question's profile against an empty corpus (answer type, acronym and years do not depend on it)."""
    return profile(question, {}, 1.0, Vocabulary(()))


# --- answer_type ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # acronym: an all-capitals (or DoD-style) word before "stand(s)/stood/short for", checked first
        ("What does DHS stand for?", "acronym"),
        ("What does the acronym IIRIRA stand for?", "acronym"),
        ("What did the LMP acronym stand for?", "acronym"),  # one word between the acronym and "stand"
        ("What is NATO short for?", "acronym"),
        ("What is DoD short for?", "acronym"),
        ("What do MSPs stand for?", "acronym"),  # a plural acronym
        ("What does the program stand for?", "none"),  # no acronym: a question about values
        # date: "when" before a verb or at the end, "what/which year|date|decade|century|month|day"
        ("When did it start?", "date"),
        ("When was it signed?", "date"),
        ("It started when?", "date"),
        ("When?", "date"),
        ("Since when has it run?", "date"),
        ("In what year did it start?", "date"),
        ("Which decade saw it?", "date"),
        ("What date was it?", "date"),
        ("Since which year?", "date"),
        ("Which year did the company start?", "date"),  # date is checked before organisation
        ("What is it called when water freezes?", "none"),  # "when" joins two clauses: no date asked
        ("What happened when it started?", "none"),
        ("When the war ended, who led?", "person"),  # "when" before a noun: the question is "who"
        pytest.param("What day-to-day tasks does it do?", "none"),
        # quantity
        ("How many agencies take part?", "quantity"),
        ("How much does it cost?", "quantity"),
        ("How long is the term?", "quantity"),
        ("How old is he?", "quantity"),
        ("What percentage voted?", "quantity"),
        ("What number of people?", "quantity"),
        ("How many companies are in which country?", "quantity"),  # quantity before organisation and place
        ("How does it work?", "none"),
        # person
        ("Who leads it?", "person"),
        ("Whom did he meet?", "person"),
        ("Whose car is it?", "person"),
        ("What actress starred?", "person"),
        ("Which famous poet wrote it?", "person"),  # one word between "which" and the person noun
        ("Which presidents served?", "person"),
        ("Who is the director of the program?", "person"),
        # organisation
        ("Which company built it?", "organisation"),
        ("Which tech firms sell data?", "organisation"),
        ("Which agencies share data?", "organisation"),
        # place
        ("Where is it?", "place"),
        ("In which country is it?", "place"),
        ("From what region did they come?", "place"),
        ("What city hosts it?", "place"),
        # reason
        ("Why did it fail?", "reason"),
        ("For what reason did it fail?", "reason"),
        ("What was the reason for it?", "reason"),
        # none
        ("What is a 287(g) agreement?", "none"),
        ("What is the program?", "none"),
    ],
)
def test_answer_type(question: str, expected: str) -> None:
    """Each question pattern gives its answer type, in the order acronym, date, quantity, person, ..."""
    assert answer_type(question) == expected


# --- attribute_of -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is the salary of a fusion center analyst?", ("salari",)),
        ("What was the average salary for analysts?", ("averag", "salari")),  # up to three words
        ("What is the annual budget of DHS?", ("annual", "budget")),
        ("How is the cost in Texas?", ("cost",)),
        ("What is the population of Texas?", ("popul",)),
        ("What causes crema?", ("caus",)),
        ("What caused the war?", ("caus",)),  # every form of "cause" gives one stem
        ("What leads to delays?", ("lead",)),
        ("What results in errors?", ("result",)),
        ("What is the name of the program?", ()),  # too general to tell
        ("What is the main purpose of the program?", ()),
        ("What is the role of ICE?", ()),
        ("How does it work?", ()),
        ("What is the price?", ()),  # no "of/for/in ..." after it
        ("What is the very long winded thing of it?", ()),  # four words: not an attribute
        pytest.param("What's the price of it?", ("price",)),
    ],
)
def test_attribute_of(question: str, expected: tuple[str, ...]) -> None:
    """The attribute asked about, stemmed, without general words."""
    assert attribute_of(question) == expected


# --- expands ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acronym", "text", "expected"),
    [
        ("IIRIRA", "the Illegal Immigration Reform and Immigrant Responsibility Act (IIRIRA)", True),
        ("DHS", "the Department of Homeland Security", True),  # "of" may sit inside the run
        ("DHS", "the department's staff", False),
        ("DoD", "the Department of Defense", True),  # the small word's initial counts too
        ("LMP", "The Lunar Module Pilot sat on the right.", True),
        ("ICE", "Immigration and Customs Enforcement (ICE) shares data.", True),
        ("ICE", "Immigration officers and Customs staff handle Enforcement.", False),  # initials not in a row
        ("ICE", "ICE shares data.", False),  # the acronym alone is not its expansion
        ("NATO", "North Atlantic Treaty Organization", True),  # a run that ends the text
    ],
)
def test_expands(acronym: str, text: str, expected: bool) -> None:
    """An expansion is a run of capitalised words (and linking words) whose initials spell the acronym."""
    assert expands(acronym, text) is expected


# --- year_ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("From 2008-2021, and again in 2024 (1998–99).", [(2008, 2021), (2024, 2024), (1998, 1999)]),
        ("In 1998-1999", [(1998, 1999)]),
        ("in 2008 - 09", [(2008, 2009)]),  # spaces around the dash
        ("1999-98", [(1999, 1999)]),  # a range that runs backwards keeps its first year
        ("Over 3,000 agencies, 12345 files, 2.2019 and 1,2019", []),  # not years
        ("No year here.", []),
        pytest.param("in the 1990s", [(1990, 1999)]),
    ],
)
def test_year_ranges(text: str, expected: list[tuple[int, int]]) -> None:
    """Years and year ranges, as (first, last), two-digit ends completed from the first year."""
    assert year_ranges(text) == expected


# --- unknown_names ----------------------------------------------------------------------------------

CORPUS = "Thomas de Maizière met the Scottish Parliament (MSPs) in India in 2019, at the Super Bowl, and 287(g)."


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("What did Maiziere say?", ()),  # accents forgiven
        ("What did Thomas Smithers say?", ()),  # one word of the name is known
        ("Which Indian leader spoke?", ()),  # one letter off
        ("Who sang at the Superbowl?", ()),  # a compound
        ("Who sits in the SP?", ()),  # too short to judge
        ("Who is Al Gore?", ()),  # a name with a two-letter word is too ambiguous
        ("Who won in Texas?", ("Texas",)),
        ("Who won the FIFA World Cup?", ("FIFA World Cup",)),  # a run of capitalised words is one name
        ("Who met John de Smith?", ("John de Smith",)),  # linking words stay inside the name
        ("Who met the Smiths, the Joneses?", ("Smiths", "Joneses")),
        ("Texas is where?", ()),  # the first word may be capitalised for the sentence alone
        ("What happened in 2019?", ()),
        ("What happened in 2024 and 1,250 times?", ("2024", "1,250")),
        ("What about the 80s, or 287(g)?", ()),  # short numbers are too common to judge
        ("Who won in Texas, in Texas?", ("Texas",)),  # each name once
    ],
)
def test_unknown_names(question: str, unknown: tuple[str, ...]) -> None:
    """Names and long numbers the corpus never mentions, in any near spelling."""
    assert unknown_names(question, Vocabulary(tokenize(CORPUS))) == unknown


# --- gives_type -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        # quantity: a number the question does not hold; a list marker "(1) " is no quantity
        ("How many agencies take part?", "Over 3,000 agencies participate.", True),
        ("How many agencies take part?", "Many agencies participate.", False),
        ("How long is the term?", "(1) A Director of the Service.", False),
        ("How long is the term?", "(1) A Director serves 5 years.", True),
        ("How many 287(g) agreements exist?", "The 287(g) program is old.", False),  # only the question's number
        # date: a number, a month, a century or a decade
        ("When did 287(g) start?", "It began in 1996.", True),
        ("When did it start?", "It began in March.", True),
        ("When did it start?", "It began in the last century.", True),
        ("When did it start?", "It began decades ago.", True),
        ("When did it start?", "It began after the reform.", False),
        ("When did it start?", "(2025) It began.", True),  # a year in brackets is no list marker
        pytest.param(
            "When did 287(g) start?", "The 287(g) program is old.", False,
        ),
        pytest.param("When did it start?", "(1) It began.", False),
        pytest.param(
            "When did it start?", "Congress decided the matter.", False,
        ),
        pytest.param(
            "When did it start?", "The agency may share data.", False,
        ),
        # person, organisation, place: a capitalised word inside the text that the question lacks
        ("Who runs the program?", "It is run by the agency, led by Smith.", True),
        ("Who runs the program?", "It is run by the agency.", False),
        ("Who runs the program?", "Smith runs the program.", False),  # the first word is capitalised anyway
        ("Which company?", "The deal went to BSkyB in 2010.", True),
        ("Which company?", "Private companies sell data.", False),
        ("Which company runs ICE?", "The agency runs ICE.", False),  # only the question's own name
        ("Which company did California's law name?", "It said: California’s law applies.", False),  # either '
        ("Which company did California's law name?", "It said: Oracle’s law applies.", True),
        ("Where is it based?", "It is based in Washington.", True),
        ("Where is it based?", "it is based downtown.", False),
        # reason: a causal connective
        ("Why did it fail?", "It failed because funding ended.", True),
        ("Why did it fail?", "It failed due to cuts.", True),
        ("Why did it fail?", "It was made to avoid delays.", True),
        ("Why did it fail?", "It failed in 2020.", False),
        # acronym: the text spells it out
        (
            "What does the acronym IIRIRA stand for?",
            "Under the Illegal Immigration Reform and Immigrant Responsibility Act (IIRIRA), agencies share data.",
            True,
        ),
        ("What does the acronym IIRIRA stand for?", "IIRIRA authorizes 287(g) agreements since 1996.", False),
        ("What did the LMP acronym stand for?", "The Lunar Module Pilot sat on the right.", True),
        ("What is DoD short for?", "It reports to the Department of Defense.", True),
        ("What is DoD short for?", "It reports to the department in 2020.", False),  # a number is no expansion
        # no answer type asked: nothing gives it
        ("What is the program?", "It began in 1996.", False),
    ],
)  # fmt: skip
def test_gives_type(question: str, text: str, expected: bool) -> None:
    """Whether a text holds the kind of answer its question asks for."""
    assert gives_type(asked(question), text) is expected


# --- dated_elsewhere --------------------------------------------------------------------------------

BUDGET = "Budget (2008-2021): $2.8 billion."


@pytest.mark.parametrize(
    ("question", "text", "passage_text", "expected"),
    [
        ("What was the budget in 2024?", BUDGET, BUDGET, True),  # the unit's range excludes 2024
        ("What was the budget in 2024?", BUDGET, BUDGET + " Since June 2024, more.", False),  # the passage names it
        ("What was the budget in 2010?", BUDGET, BUDGET, False),  # inside the range
        ("What was the budget in 1999?", "In 1998–99 it grew.", "In 1998–99 it grew.", False),  # a two-digit end
        ("What was the budget?", BUDGET, BUDGET, False),  # no year asked
        ("What was the budget in 2024?", "It cost $2 million.", "It cost $2 million.", False),  # the unit is undated
        ("Was the budget set in 2008 or 2024?", BUDGET, BUDGET, False),  # one asked year inside is enough
    ],
)
def test_dated_elsewhere(question: str, text: str, passage_text: str, expected: bool) -> None:
    """A unit is dated elsewhere when its own years exclude every asked year and its passage never names one."""
    assert dated_elsewhere(asked(question), text, passage_text) is expected


# --- profile ----------------------------------------------------------------------------------------

IDF = {"director": 2.0, "program": 1.5, "fusion": 3.0}
VOCABULARY = Vocabulary(["director", "program", "fusion"])


def test_profile_of_a_role_question() -> None:
    """Weights keep question order with the ceiling for unseen tokens; role, years and unknown names are read."""
    p = profile("Who is the director of the Texas program in 2024?", IDF, 5.0, VOCABULARY)
    assert p == Profile(
        text="Who is the director of the Texas program in 2024?",
        weights=(("director", 2.0), ("texa", 5.0), ("program", 1.5), ("2024", 5.0)),
        answer_type="person",
        acronym=None,
        attribute=("director",),  # the role is the attribute asked about
        role="director",
        years=((2024, 2024),),
        unknown=("Texas", "2024"),
    )
    assert p.tokens == frozenset({"director", "texa", "program", "2024"})
    assert p.total_weight == 13.5


def test_profile_weights_each_token_once() -> None:
    """A repeated word is weighed once, at its first place."""
    p = profile("Which fusion center funds the fusion center?", IDF, 5.0, VOCABULARY)
    assert p.weights == (("fusion", 3.0), ("center", 5.0), ("fund", 5.0))
    assert p.answer_type == "none" and p.role is None and p.unknown == ()


def test_profile_of_an_acronym_question() -> None:
    """An acronym question keeps the acronym as written."""
    p = profile("What does DHS stand for?", IDF, 5.0, Vocabulary(["dhs", "stand"]))
    assert (p.answer_type, p.acronym, p.unknown) == ("acronym", "DHS", ())
    assert profile("What does the program stand for?", IDF, 5.0, VOCABULARY).acronym is None


@pytest.mark.parametrize(
    ("question", "role"),
    [
        ("Who is the director of the program?", "director"),
        ("Who is the current director of the program?", "director"),  # a qualifier before the role
        ("Who was the first president of the United States?", "president"),
        ("Who were two of the program's leaders?", None),  # not "who is the <role> of"
        ("What is the director of the program?", None),
    ],
)
def test_profile_role(question: str, role: str | None) -> None:
    """The role of "who is the <role> of ...", else None."""
    assert asked(question).role == role


def test_profile_attribute_and_years() -> None:
    """The attribute is stemmed; years are kept as (first, last) ranges."""
    p = asked("What was the salary of an analyst from 2008-2021 and in 2024?")
    assert (p.attribute, p.years) == (("salari",), ((2008, 2021), (2024, 2024)))
