"""Split prose into sentences with exact offsets.

A rule-based splitter: a sentence ends at ``.``, ``!`` or ``?`` (with any
closing quotes or brackets) followed by whitespace and a character that can
start a sentence, unless the word before the stop is a known abbreviation or
a single initial. Line breaks inside a block do not end a sentence, but a
blank line does.
"""

from __future__ import annotations

import re

from qa.types import Span

# Words that end with a period without ending the sentence (lower-cased, no dot).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al inc ltd co corp dept univ "
    "gen sen rep gov col lt sgt capt adm no nos vol fig figs sec art ch para approx est "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n a.m p.m d.c ph.d".split()
)
# A unit longer than this is not a sentence but unbroken text: it is cut at whitespace.
HARD_MAX_CHARS = 1500

_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9\u00C0-\u024F])|\n[ \t]*\n")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _is_abbreviation(text: str, stop: int) -> bool:
    """Whether the period at ``stop`` closes an abbreviation or an initial."""
    match = _WORD_BEFORE.search(text, max(0, stop - 12), stop + 1)
    if not match:
        return False
    word = match.group(1).lower().rstrip(".")
    return word in ABBREVIATIONS or (len(word) == 1 and match.group(1).isupper())


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
