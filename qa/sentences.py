"""Split prose into sentences with exact offsets.

A rule-based splitter: a sentence ends at ``.``, ``!`` or ``?`` (with any
closing quotes or brackets) followed by whitespace and a character that can
start a sentence (a capital of the Latin, Greek or Cyrillic alphabets, a digit,
or a letter of a script without capitals), unless the word before the stop is
a known abbreviation or a single initial; an abbreviation that often ends a
sentence ("etc.", "U.S.") ends one before a word that usually begins one
("The", "It"). Chinese and Japanese full stops (``。！？``) end a sentence with
no space after them. Line breaks inside a block do not end a sentence, but a
blank line does.
"""

from __future__ import annotations

import re

from qa.types import Span

# Words that end with a period without ending the sentence (lower-cased, no dot).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs v etc e.g i.e cf al inc ltd co corp bros dept univ assn "
    "gen sen rep gov pres hon rev col lt sgt capt adm no nos vol fig figs ex "
    "sec art ch para approx est ca ave blvd rd apt ste "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun "
    "u.s u.k u.n u.s.a u.s.c c.f.r a.m p.m d.c ph.d".split()
)
# Abbreviations that stand before a number only ("p. 5", "Eq. 3", "ext. 204"): before a word, the period
# ends a sentence ("... 17O + p. (This ...").
BEFORE_NUMBERS = frozenset("p pp eq eqs tab ref refs ext".split())
# Abbreviations that often end a sentence too ("... and so on, etc. The next ..."): they end one when the
# next word is one that usually begins a sentence.
ENDS_SENTENCES = frozenset("etc al inc ltd co corp jr sr u.s u.k u.n u.s.a a.m p.m d.c ph.d".split())
SENTENCE_STARTERS = frozenset(
    "the this that these those it its in on at for if when while after before but and as however there "
    "they we he she our their his her a an some many most all each".split()
)
# A unit longer than this is not a sentence but unbroken text: it is cut at whitespace.
HARD_MAX_CHARS = 1500

# A unit that ends on a colon or dash, or on a word that cannot end a sentence, leads into what follows.
_LEADS_IN = re.compile(
    r"(?:[:—–]|\b(?:a|an|and|are|be|by|follows|following|for|in|include|includes|including|is|means|of|on|or"
    r"|shall|that|the|to|with))\s*$",
    re.IGNORECASE,
)
_LEADS_IN_TAIL = 16
# "...; and" closes a list item before the next one: it goes on the list, it does not lead in.
_NEXT_ITEM = re.compile(r";\s*(?:and|or)\s*$", re.IGNORECASE)
# A numbered line this short, without closing punctuation, is a caption ("(1) In general").
CAPTION_MAX_CHARS = 100
# How an enumerated unit starts inside text, as legal text numbers them: "(A) ", "(iv) ", "2. ", "3) ", "- ",
# "• ". Wider than a list line's bullet (qa.structure.BULLET): it also reads "(A)" and "(iv)", which open
# units of a paragraph but do not make a line a list item.
_ENUMERATION = re.compile(r"\s*(?:\((?:\d{1,3}|[^\W\d_]{1,4})\)|\d{1,3}[.)]|[-•*–])\s+")
# What may begin a sentence: a digit, a Latin capital (and the accented letters of Latin-1 and Latin
# Extended-A/B, as before), a Greek or Cyrillic capital, or a letter of a script without capitals (Hebrew,
# Arabic, the Indic scripts, Thai, kana, Han, Hangul).
_STARTS = (
    "A-Z0-9\u00c0-\u024f\u0386-\u03ab\u0400-\u042f\u0590-\u06ff\u0900-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
)
_BOUNDARY = re.compile(
    rf"[.!?\u061F\u0964][\"'”’)\]]*(?=\s+[\"'“‘(\[«„]?[{_STARTS}])"  # a stop, a space, a sentence's start
    r"|[。！？][」』）\"”’]*(?=\S)"  # Chinese and Japanese stops need no space after them
    r"|\n[ \t]*\n"
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_WORD_AFTER = re.compile(r"\s+[\"'“‘(\[]?([A-Za-z]+)")
# Read at the period's place, not on a copy of the text after it (a copy per period is quadratic).
_NUMBER_AFTER = re.compile(r"\s*\d")


def _word_before(text: str, stop: int) -> str:
    """The word the period at ``stop`` closes, lower-cased without its final dot ("" when none); an initial
    keeps its capital ("J")."""
    match = _WORD_BEFORE.search(text, max(0, stop - 12), stop + 1)
    if not match:
        return ""
    word = match.group(1).rstrip(".")
    return word if len(word) == 1 and word.isupper() else word.lower()


def _is_abbreviation(text: str, stop: int) -> bool:
    """Whether the period at ``stop`` closes an abbreviation or an initial (and not the sentence too)."""
    if _word_before(text, stop) in ENDS_SENTENCES:
        after = _WORD_AFTER.match(text, stop + 1)
        return not (after and after.group(1).lower() in SENTENCE_STARTERS)
    return ends_in_abbreviation(text, stop)


def ends_in_abbreviation(text: str, stop: int) -> bool:
    """Whether the period at ``stop`` closes an abbreviation ("Dr.", "U.S.C.") or an initial rather than a
    sentence, whatever follows it (but a number after "p." or "Eq.")."""
    word = _word_before(text, stop)
    if word in BEFORE_NUMBERS:
        return _NUMBER_AFTER.match(text, stop + 1) is not None
    return (word in ABBREVIATIONS and word not in ENDS_SENTENCES) or (len(word) == 1 and word.isupper())


def _cut_long(start: int, end: int, text: str) -> list[Span]:
    """Cut an over-long unit at whitespace into pieces of at most HARD_MAX_CHARS."""
    pieces: list[Span] = []
    while end - start > HARD_MAX_CHARS:
        cut = text.rfind(" ", start + 1, start + HARD_MAX_CHARS)
        cut = cut if cut > start else start + HARD_MAX_CHARS
        pieces.append(Span(start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append(Span(start, end))
    return pieces


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]``, offsets into ``text``, whitespace trimmed.

    Args:
        text: The whole document text.
        start: Where the block to split begins.
        end: Where it ends (exclusive); the end of ``text`` when None.

    Returns:
        Non-empty, non-overlapping spans in order.

    Example:
        >>> t = "Dr. Smith arrived. He sat down."
        >>> [t[s.start:s.end] for s in split_sentences(t)]
        ['Dr. Smith arrived.', 'He sat down.']
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        if match.group(0)[0] == "." and _is_abbreviation(text, match.start()):
            continue
        spans.extend(_trim(text, cursor, match.end()))
        cursor = match.end()
    spans.extend(_trim(text, cursor, end))
    return spans


def _trim(text: str, start: int, end: int) -> list[Span]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return _cut_long(start, end, text) if start < end else []


def leads_in(unit_text: str) -> bool:
    """Whether a unit stops where a list or clause takes over ("The mission of the Department is to").

    Example:
        >>> leads_in("The primary mission of the Department is to"), leads_in("The term means the following:")
        (True, True)
        >>> leads_in("The Secretary is the head of the Department."), leads_in("| Fusion Centers | ~80 |")
        (False, False)
        >>> leads_in("(G) ensure that rights are not diminished; and")  # the list's next item follows
        False
    """
    # _LEADS_IN can only match the last word: searching the whole unit tried every position (7x the time).
    # The tail is longer than any of its words by more than one character, so \b sees what precedes the word.
    return bool(_LEADS_IN.search(unit_text.rstrip()[-_LEADS_IN_TAIL:])) and not _NEXT_ITEM.search(unit_text)


def is_caption(unit_text: str) -> bool:
    """Whether a unit is a numbered caption: short, capitalised, no closing punctuation ("(1) In general").

    Example:
        >>> is_caption("(2) Head of Department"), is_caption("(8) develop and implement"), is_caption("(A) Done.")
        (True, False, False)
    """
    marker = _ENUMERATION.match(unit_text)
    return (
        marker is not None
        and len(unit_text) <= CAPTION_MAX_CHARS
        and unit_text[marker.end() : marker.end() + 1].isupper()
        and unit_text[-1:].isalnum()
    )


def introduces(unit_text: str) -> bool:
    """Whether a unit introduces what follows instead of saying something itself: a caption, or a lead-in.

    Example:
        >>> introduces("(2) Head of Department"), introduces("(A) prevent attacks;"), introduces("The term means")
        (True, False, True)
    """
    return is_caption(unit_text) or leads_in(unit_text)


def without_list_marker(text: str) -> str:
    """``text`` without the list marker it starts with ("(1) ", "(A) ", "2. ", "- "), if any.

    Example:
        >>> without_list_marker("(1) A Director serves 5 years."), without_list_marker("(2025) It began.")
        ('A Director serves 5 years.', '(2025) It began.')
    """
    marker = _ENUMERATION.match(text)
    return text[marker.end() :] if marker else text


def starts_list_item(text: str) -> bool:
    """Whether a text starts like a list item: "(A) ", "(iv) ", "2. ", "3) ", "- ", "• "."""
    return bool(_ENUMERATION.match(text))
