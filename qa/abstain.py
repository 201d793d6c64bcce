"""When not to answer: the evidence score that decides abstention.

The evidence is the best answer unit's score (``qa.extract``) less penalties
for what the question asks and the unit does not give. Below the engine's
``min_score`` the answer is "not in these documents". A question the corpus
cannot answer often still finds a close sentence: these checks catch the
kinds of question where closeness is not enough.
"""

from __future__ import annotations

import re

from qa.extract import Candidate, answer_type_match, asks_for_type
from qa.tokens import Vocabulary, tokenize

# Evidence penalties for abstention. Soft: the best unit lacks the quantity, date, person or
# acronym's expansion the question asks for. Hard (P_REFUSE for each failed check: one puts any
# unit under the threshold), each measured on XQuAD dev, where it refuses at most 1 of 612
# answerable questions:
# * the question names something the corpus never mentions, in any near spelling;
# * it opens by asking for a date ("When ...", "In what year ...") and the unit has none;
# * it asks which company or organisation, and the unit names none;
# * it asks who holds a role ("Who is the director of ...?") and the unit never names the role;
# * it asks about a year, and the unit is dated to other years in a passage that never names it.
P_MISSING_TYPE = 0.15
P_REFUSE = 1.0
_DATE_QUESTION = re.compile(
    r"^\W*(when\b|((in|during) )?(what|which) (year|date|decade|century|month)\b)", re.IGNORECASE
)
_DATE = re.compile(
    r"\d|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\bcentur(y|ies)\b|\bdecades?\b", re.IGNORECASE
)
_ORGANISATION_QUESTION = re.compile(
    r"\b(which|what)\s+(\w+\s+){0,2}(compan(y|ies)|organi[sz]ations?|firms?|corporations?|business(es)?)\b",
    re.IGNORECASE,
)
_ROLE_QUESTION = re.compile(
    r"^\W*who\s+(?:is|was|are|were)\s+the\s+(?:(?:current|new|first|former|acting)\s+)?([^\W\d_]+)\s+of\b",
    re.IGNORECASE,
)
# A year, or a range of years ("2008-2021", "1998–99").
_YEARS = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?:\s*[-–]\s*(1\d{3}|20\d{2}|\d{2}))?(?![\d])")
# A capitalised word inside a sentence (after a word, a comma or a bracket): a name, an acronym.
_PROPER = re.compile(r"(?<=[\w,;:)] )[A-Z](?:[\w’'&-]|\.(?=\w))*")
# Capitalised words in a row ("Thomas de Maiziere", "FIFA World Cup"): one name.
_NAME_PHRASE = re.compile(r"(?<=\s)[A-Z][\w’'-]*(?:\s+(?:of|de|la|van|von|the|and)?\s*[A-Z][\w’'-]*)*")
_CAPITALISED = re.compile(r"[A-Z][\w’'-]*")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?!\w)")


def unknown_names(question: str, vocabulary: Vocabulary) -> list[str]:
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
    for number in _NUMBER.findall(question):
        if sum(c.isdigit() for c in number) >= 3 and not all(t in vocabulary for t in tokenize(number)):
            found.append(number)
    return list(dict.fromkeys(found))


def _fold(text: str) -> str:
    """Lower case with one apostrophe: a question typed with ' matches a source that prints ’."""
    return text.lower().replace("’", "'")


def names_something_new(question: str, unit_text: str) -> bool:
    """Whether the unit holds a capitalised word (inside a sentence) that the question does not."""
    folded = _fold(question)
    return any(_fold(word) not in folded for word in _PROPER.findall(unit_text))


def _unit_text(best: Candidate) -> str:
    return best.passage.text[best.unit.start - best.passage.start : best.unit.end - best.passage.start]


def _role(question: str) -> str | None:
    """The role a "Who is the <role> of ...?" question asks about, or None."""
    match = _ROLE_QUESTION.search(question)
    return match.group(1) if match else None


def _lacks_role(role: str, unit_text: str) -> bool:
    return not set(tokenize(role)) <= set(tokenize(unit_text))


def year_ranges(text: str) -> list[tuple[int, int]]:
    """The years and year ranges a text names, as (first, last).

    Example:
        >>> year_ranges("From 2008-2021, and again in 2024 (1998–99).")
        [(2008, 2021), (2024, 2024), (1998, 1999)]
    """
    ranges = []
    for match in _YEARS.finditer(text):
        first, last = int(match[1]), match[2]
        end = first if last is None else int(last) if len(last) == 4 else first // 100 * 100 + int(last)
        ranges.append((first, max(first, end)))
    return ranges


def dated_elsewhere(question: str, unit_text: str, passage_text: str) -> bool:
    """Whether the question asks about years that the unit's own dates exclude and its passage never names."""
    asked = [first for first, _ in year_ranges(question)]
    dates = year_ranges(unit_text)
    if not asked or not dates:
        return False
    if any(first <= year <= last for year in asked for first, last in dates):
        return False
    return not any(str(year) in passage_text for year in asked)


NO_ANSWER = "no passage in these documents answers the question"


def failed_checks(question: str, best: Candidate | None, vocabulary: Vocabulary) -> list[str]:
    """The hard checks the question fails against the best unit, each as the reason it gives, in order."""
    failed = []
    if names := unknown_names(question, vocabulary):
        failed.append("these documents never mention " + ", ".join(f"“{name}”" for name in names))
    if best is None:
        return failed
    text = _unit_text(best)
    if _DATE_QUESTION.search(question) and not _DATE.search(text):
        failed.append("no passage gives the date asked for")
    if _ORGANISATION_QUESTION.search(question) and not names_something_new(question, text):
        failed.append("no passage names the company or organisation asked for")
    if (role := _role(question)) and _lacks_role(role, text):
        failed.append(f"no passage mentions the {role.lower()} asked about")
    if dated_elsewhere(question, text, best.passage.text):
        failed.append("the closest passage is about another period")
    return failed


def evidence(question: str, best: Candidate, vocabulary: Vocabulary) -> float:
    """The score that decides abstention: the best unit's score, less the penalties above."""
    penalty = P_REFUSE * len(failed_checks(question, best, vocabulary))
    if asks_for_type(question) and not answer_type_match(question, _unit_text(best)):
        penalty += P_MISSING_TYPE
    return best.score - penalty


def refusal_reason(question: str, best: Candidate | None, vocabulary: Vocabulary) -> str:
    """Why a refused question was refused, in words: the first hard check it failed, else NO_ANSWER."""
    return next(iter(failed_checks(question, best, vocabulary)), NO_ANSWER)
