"""What a question asks for: its profile, computed once, and every question and text pattern in one place.

``profile`` turns a question into a frozen ``Profile``: its content tokens
with their IDF, the kind of answer it asks for (a date, a quantity, a person,
an organisation, what an acronym stands for), the attribute it asks about
(the head noun of "what is the population of ...", the verb of "what causes
..."), the role of "who is the director of ...", the years it names, and the
names and numbers the corpus never mentions. The candidate features
(``qa.features``) read the profile; nothing else parses a question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from qa.sentences import without_list_marker
from qa.tokens import Vocabulary, stem, tokenize

AnswerType = Literal["acronym", "date", "quantity", "person", "organisation", "place", "reason", "none"]

# "When" asks for a time only before a verb or at the end ("When did ...?", "... ended when?"); elsewhere it
# joins two clauses ("What is it called when ...?").
_AUXILIARY = r"did|does|do|was|were|is|are|will|would|could|can|has|have|had|should|must|might"
_DATE_QUESTION = re.compile(
    rf"\bwhen(?=\s+({_AUXILIARY})\b|\s*\?)"
    r"|\b((in|during|since|by) )?(what|which) (years?|dates?|decades?|century|centuries|months?|days?)\b(?!-)",
    re.IGNORECASE,
)
_QUANTITY_QUESTION = re.compile(
    r"\bhow (many|much|long|old|far|large|big|tall|often|few)\b"
    r"|\b(what|which|in what) (percentage|percent|age|number|amount|time|share|proportion|size)\b",
    re.IGNORECASE,
)
# "Who ...?", or "What/which <person noun> ...?" ("What actress ...?", "Which famous poet ...?").
_PERSON_QUESTION = re.compile(
    r"\b(who|whom|whose)\b|\b(what|which)\s+(\w+\s+)?(actor|actress|artist|author|composer|emperor|explorer"
    r"|king|leader|man|painter|person|philosopher|player|poet|politician|pope|president|queen|ruler|scientist"
    r"|senator|singer|woman|writer)s?\b",
    re.IGNORECASE,
)
_ORGANISATION_QUESTION = re.compile(
    r"\b(which|what)\s+(\w+\s+){0,2}(compan(y|ies)|organi[sz]ations?|firms?|corporations?|business(es)?"
    r"|agenc(y|ies))\b",
    re.IGNORECASE,
)
_PLACE_QUESTION = re.compile(
    r"^\W*where\b|\b(in|at|from|to) (what|which) (place|country|city|state|region|area|town|continent|county)\b"
    r"|\b(what|which) (place|country|city|state|region|area|town|continent|county)\b",
    re.IGNORECASE,
)
_REASON_QUESTION = re.compile(r"^\W*why\b|\bfor what reason\b|\bwhat (is|was|are|were) the reasons?\b", re.IGNORECASE)
_REASON = re.compile(r"\b(because|due to|since|so that|in order to|as a result|owing to"
                     r"|to (?:avoid|prevent|ensure|allow|make))\b",
                     re.IGNORECASE)  # fmt: skip
# "What does the acronym IIRIRA stand for?", "What did the LMP acronym stand for?", "What is NATO short for?"
_ACRONYM_QUESTION = re.compile(r"\b([A-Z][A-Za-z&]*[A-Z])s?\b(?:\s+[a-z]+)?\s+(?:stands?|stood|short)\s+for\b")
_ROLE_QUESTION = re.compile(
    r"^\W*who\s+(?:is|was|are|were)\s+the\s+(?:(?:current|new|first|former|acting)\s+)?([^\W\d_]+)\s+of\b",
    re.IGNORECASE,
)
# The attribute asked about: "what is the <population> of", "what was the <average salary> for",
# "how much does it <cost>", "what <causes> ...", "what is the <price> of".
_ATTRIBUTE_QUESTION = re.compile(
    r"^\W*(?:what|which|how)(?:\s+(?:is|was|are|were)|['’]s)\s+(?:the|a|an)\s+((?:[^\W\d_]+\s+){0,2}?[^\W\d_]+)"
    r"\s+(?:of|for|in|at|on|to|between)\b",
    re.IGNORECASE,
)
_CAUSE_QUESTION = re.compile(r"^\W*(?:what|which)\s+(?:\w+\s+)?(causes?|caused|leads? to|led to|results? in)\b",
                             re.IGNORECASE)  # fmt: skip
_NUMBER = re.compile(r"\d+")
# A number as written, of two digits or more ("3,000", "2.8", "1998").
_WRITTEN_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?!\w)")
# A capitalised word inside a sentence (after a word, a comma or a bracket): a name, an acronym.
_PROPER = re.compile(r"(?<=[\w,;:)] )[A-Z](?:[\w’'&-]|\.(?=\w))*")
# Capitalised words in a row ("Thomas de Maiziere", "FIFA World Cup"): one name.
_NAME_PHRASE = re.compile(r"(?<=\s)[A-Z][\w’'-]*(?:\s+(?:of|de|la|van|von|the|and)?\s*[A-Z][\w’'-]*)*")
_CAPITALISED = re.compile(r"[A-Z][\w’'-]*")
_DATE = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?"
    r"|nov(?:ember)?|dec(?:ember)?)\b\.?|\bmay\s+\d|\bcentur(?:y|ies)\b|\bdecades?\b",
    re.IGNORECASE,
)
# A year, a decade ("1990s") or a range of years ("2008-2021", "1998–99").
_YEARS = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?:(s)\b|\s*[-–]\s*(1\d{3}|20\d{2}|\d{2}))?(?![\d])")
_WORD = re.compile(r"[^\W\d_][\w’'-]*")
# Small words an expansion may hold without a letter in the acronym ("Department of Homeland Security").
_LINKING = frozenset("of and the for on in to at by de".split())
# Words too general to be the attribute asked about ("what is the name of", "what is the role of").
_GENERAL = frozenset(tokenize("name names role purpose goal meaning definition term kind type part main primary"))


@dataclass(frozen=True, slots=True)
class Profile:
    """A question as the answer features read it.

    Attributes:
        text: The question.
        weights: Each distinct content token (``qa.tokens.tokenize``) with its IDF, in question order;
            a token the corpus lacks gets the corpus's highest IDF.
        answer_type: The kind of answer asked for, or ``none``.
        acronym: The acronym of "what does X stand for", else None.
        attribute: Stemmed tokens of the attribute asked about ("salary", "cause"), or of the role of
            "who is the <role> of", else empty.
        role: The role of "who is the <role> of ...", else None.
        years: The years and year ranges the question names, as (first, last).
        unknown: Names and numbers of the question that the corpus never mentions.
    """

    text: str
    weights: tuple[tuple[str, float], ...]
    answer_type: AnswerType
    acronym: str | None
    attribute: tuple[str, ...]
    role: str | None
    years: tuple[tuple[int, int], ...]
    unknown: tuple[str, ...]

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(token for token, _ in self.weights)

    @property
    def total_weight(self) -> float:
        return sum(weight for _, weight in self.weights)


def answer_type(question: str) -> AnswerType:
    """The kind of answer a question asks for: the first that matches of acronym, date, quantity, person,
    organisation, place and reason.

    Example:
        >>> [answer_type(q) for q in ("What does DHS stand for?", "When was it signed?", "How many agencies?")]
        ['acronym', 'date', 'quantity']
        >>> [answer_type(q) for q in ("Who leads it?", "Which company built it?", "Where is it?", "Why?")]
        ['person', 'organisation', 'place', 'reason']
        >>> answer_type("What is a 287(g) agreement?")
        'none'
    """
    if _ACRONYM_QUESTION.search(question):
        return "acronym"
    for kind, pattern in (
        ("date", _DATE_QUESTION),
        ("quantity", _QUANTITY_QUESTION),
        ("person", _PERSON_QUESTION),
        ("organisation", _ORGANISATION_QUESTION),
        ("place", _PLACE_QUESTION),
        ("reason", _REASON_QUESTION),
    ):
        if pattern.search(question):
            return kind  # type: ignore[return-value]
    return "none"


def attribute_of(question: str) -> tuple[str, ...]:
    """Stemmed tokens of the attribute a question asks about, without words too general to tell.

    Example:
        >>> attribute_of("What is the salary of a fusion center analyst?"), attribute_of("What causes crema?")
        (('salari',), ('caus',))
        >>> attribute_of("What is the name of the program?"), attribute_of("How does it work?")
        ((), ())
    """
    if match := _CAUSE_QUESTION.search(question):
        verb = match.group(1).lower()
        return (stem("cause"),) if "caus" in verb else (stem("lead"),) if verb.startswith("le") else (stem("result"),)
    if match := _ATTRIBUTE_QUESTION.search(question):
        return tuple(t for t in tokenize(match.group(1)) if t not in _GENERAL)
    return ()


def expands(acronym: str, text: str) -> bool:
    """Whether ``text`` spells out ``acronym``: capitalised words in a row whose initials make it.

    Example:
        >>> expands("IIRIRA", "the Illegal Immigration Reform and Immigrant Responsibility Act (IIRIRA)")
        True
        >>> expands("DHS", "the Department of Homeland Security"), expands("DHS", "the department's staff")
        (True, False)
        >>> expands("DoD", "the Department of Defense")
        True
    """
    letters = "".join(c for c in acronym.lower() if c.isalpha())
    initials = linked = ""  # the run's capitalised initials; the same with the small words' ("DoD")
    for word in [*_WORD.findall(text), ""]:
        if word[:1].isupper():
            initials += word[0].lower()
            linked += word[0].lower()
        elif initials and word.lower() in _LINKING:
            linked += word[0].lower()
        else:
            if letters in initials or letters in linked:
                return True
            initials = linked = ""
    return False


def year_ranges(text: str) -> list[tuple[int, int]]:
    """The years and year ranges a text names, as (first, last).

    Example:
        >>> year_ranges("From 2008-2021, and again in 2024 (1998–99), as in the 1990s.")
        [(2008, 2021), (2024, 2024), (1998, 1999), (1990, 1999)]
    """
    ranges = []
    for match in _YEARS.finditer(text):
        first, decade, last = int(match[1]), match[2], match[3]
        if decade:
            end = first + 9
        else:
            end = first if last is None else int(last) if len(last) == 4 else first // 100 * 100 + int(last)
        ranges.append((first, max(first, end)))
    return ranges


def unknown_names(question: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    """Names and numbers of the question that the corpus never mentions.

    A name is a run of capitalised words after the first word; it is unknown
    when none of its words is known in any near spelling (``Vocabulary.knows``),
    and names with a word of one or two letters are too ambiguous to judge. A
    number of three digits or more is unknown unless it appears as written.
    """
    words = question.strip().split(maxsplit=1)
    rest = " " + words[1] if len(words) > 1 else ""
    found = []
    for phrase in _NAME_PHRASE.findall(rest):
        parts = _CAPITALISED.findall(phrase)
        tokens = [t for part in parts for t in tokenize(part)]
        if tokens and all(len(p) > 2 for p in parts) and not any(vocabulary.knows(t) for t in tokens):
            found.append(phrase)
    for number in _WRITTEN_NUMBER.findall(question):
        if sum(c.isdigit() for c in number) >= 3 and not all(t in vocabulary for t in tokenize(number)):
            found.append(number)
    return tuple(dict.fromkeys(found))


def profile(question: str, idf: Mapping[str, float], idf_ceiling: float, vocabulary: Vocabulary) -> Profile:
    """The profile of ``question`` against a corpus (its IDF table and vocabulary)."""
    kind = answer_type(question)
    acronym = _ACRONYM_QUESTION.search(question)
    role = _ROLE_QUESTION.search(question)
    attribute = attribute_of(question) or (tuple(tokenize(role.group(1))) if role else ())
    return Profile(
        text=question,
        weights=tuple((t, idf.get(t, idf_ceiling)) for t in dict.fromkeys(tokenize(question))),
        answer_type=kind,
        acronym=acronym.group(1) if acronym and kind == "acronym" else None,
        attribute=attribute,
        role=role.group(1) if role else None,
        years=tuple(year_ranges(question)),
        unknown=unknown_names(question, vocabulary),
    )


def _fold(text: str) -> str:
    """Lower case with one apostrophe: a question typed with ' matches a source that prints ’."""
    return text.lower().replace("’", "'")


def names_something_new(question: str, text: str) -> bool:
    """Whether ``text`` holds a capitalised word (inside a sentence) that the question does not."""
    folded = _fold(question)
    return any(_fold(word) not in folded for word in _PROPER.findall(text))


def new_numbers(question: str, text: str, *, skip_marker: bool = True) -> bool:
    """Whether ``text`` holds a number the question does not (a list marker "(1) " is no quantity)."""
    numbers = set(_NUMBER.findall(without_list_marker(text) if skip_marker else text))
    return bool(numbers - set(_NUMBER.findall(question)))


def has_date(question: str, text: str) -> bool:
    """Whether ``text`` gives a date the question lacks: a number of its own (not a list marker), a month,
    a century or a decade.

    Example:
        >>> has_date("When did it start?", "(2025) It began."), has_date("When?", "The matter may rest.")
        (True, False)
        >>> has_date("When did 287(g) start?", "The 287(g) program is old."), has_date("When?", "(1) It began.")
        (False, False)
    """
    return new_numbers(question, text) or bool(_DATE.search(text))


def gives_type(asked: Profile, text: str) -> bool:
    """Whether ``text`` holds the kind of answer the question asks for (False when it asks for none)."""
    question = asked.text
    match asked.answer_type:
        case "acronym":
            return asked.acronym is not None and expands(asked.acronym, text)
        case "date":
            return has_date(question, text)
        case "quantity":
            return new_numbers(question, text)
        case "person" | "organisation" | "place":
            return names_something_new(question, text)
        case "reason":
            return bool(_REASON.search(text))
    return False


def dated_elsewhere(asked: Profile, text: str, passage_text: str) -> bool:
    """Whether the question asks about years that ``text``'s own dates exclude and its passage never names.

    Example:
        >>> asked = profile("What happened in 2010-2012?", {}, 1.0, Vocabulary(()))
        >>> dated_elsewhere(asked, "It ran (2011-2015).", ""), dated_elsewhere(asked, "It ran in 1999.", "")
        (False, True)
    """
    dates = year_ranges(text)
    if not asked.years or not dates:
        return False
    if any(
        first <= last_asked and asked_first <= last for asked_first, last_asked in asked.years for first, last in dates
    ):
        return False
    return not any(str(year) in passage_text for pair in asked.years for year in pair)
