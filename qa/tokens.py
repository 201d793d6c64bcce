"""Word tokens for the lexical index and for matching question words in sentences.

Lower-cased words and numbers (``3,000`` and ``2.8`` stay whole), English
stop words dropped, and the Snowball English stemmer, so that "agencies"
finds "agency" and "authorizes" finds "authorized". The stemmer is PyStemmer,
Snowball's C build, whose stems are those of Snowball's pure-Python build
(``snowballstemmer``, which the lexical indexes were first built with) at about
a twentieth of the cost: a word new to the process costs 2 µs instead of 39.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Container, Iterable
from functools import lru_cache
from typing import Any

import Stemmer  # PyStemmer

# Bumped whenever tokens change: the lexical index must then be rebuilt.
TOKENIZER_VERSION = 3

# A word hyphenated across a line end ("infor-\nmation", as PDF text often has it) is searched whole.
_LINE_END_HYPHEN = re.compile(r"(?<=[^\W\d_])-[ \t]*\r?\n[ \t]*(?=[^\W\d_])")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?|\d+", re.UNICODE)

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t also many much kind kinds sort type according""".split()
)


# A stemmer keeps the word it works on (and a cache) in itself and is not safe to share between threads,
# and a server answers in several threads. One stemmer per thread.
_STEMMERS = threading.local()


def _stemmer() -> Any:
    stemmer = getattr(_STEMMERS, "stemmer", None)
    if stemmer is None:
        stemmer = _STEMMERS.stemmer = Stemmer.Stemmer("english")
    return stemmer


# Month names and their abbreviations meet at the abbreviation ("January" finds "Jan-Mar").
_MONTHS = {
    name: name[:3]
    for name in "january february march april may june july august september october november december".split()
} | {"sept": "sep"}


def _bare(word: str) -> str:
    """A lower-cased word without its possessive ending."""
    return word[:-2] if word.endswith(("'s", "’s")) else word


def stem(word: str) -> str:
    """The Snowball English stem of a lower-cased word, possessive removed; months abbreviated."""
    word = _bare(word)
    return _MONTHS.get(word) or str(_stemmer().stemWord(word))


@lru_cache(maxsize=1 << 17)
def token_of(word: str) -> str | None:
    """The token of a lower-cased word (``stem``), or None for a stop word; cached, as a corpus repeats its
    words: tokenizing is most of what reading a passage for the first time costs."""
    if word in STOPWORDS or _bare(word) in STOPWORDS:
        return None
    return stem(word)


# Combining diacritical marks: the word pattern would split a word at one.
_LOOSE_MARK = re.compile("[\u0300-\u036f]")


def fold(text: str) -> str:
    """Non-ASCII text as tokens read it: NFKC, case-folded, recomposed (NFC), and without the combining
    marks left over. Case-folding decomposes some letters ("ΐ" into three code points, "İ" into "i" and a
    combining dot), and text may carry a mark no letter composes with; the word pattern would split the
    word at the mark. NFC puts back the marks that have a composed letter ("é" stays "é"), and the rest
    go: "İstanbul" is "istanbul", as "Istanbul" is. (For ASCII text, NFKC changes nothing and case-folding
    is ``lower``.)"""
    return _LOOSE_MARK.sub("", unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).casefold()))


def tokenize(text: str) -> list[str]:
    """Content tokens of a text, in order, with repeats.

    Example:
        >>> tokenize("How many agencies participate in Secure Communities?")
        ['agenc', 'particip', 'secur', 'communiti']
        >>> tokenize("shared infor-\\nmation")
        ['share', 'inform']
    """
    folded = text.lower() if text.isascii() else fold(text)
    if "-" in folded:
        folded = _LINE_END_HYPHEN.sub("", folded)
    tokens = []
    for word in _TOKEN.findall(folded):
        token = token_of(word.replace(",", "") if "," in word else word)
        if token is not None:
            tokens.append(token)
    return tokens


def strip_accents(token: str) -> str:
    """A token without its combining marks: "maizière" -> "maiziere"."""
    if token.isascii():  # most tokens: nothing to strip
        return token
    return "".join(c for c in unicodedata.normalize("NFKD", token) if not unicodedata.combining(c))


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def one_edit(word: str) -> set[str]:
    """Every string one deletion, transposition, replacement or insertion (of a-z) away from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return deletes | transposes | replaces | inserts


class Vocabulary:
    """The tokens of an index, for asking whether a question's word appears in the corpus in some spelling.

    ``knows`` forgives what a reader would: accents ("Maiziere" finds
    "Maizière"), one slip of the keyboard in a word of four letters or more
    ("Indian" finds "India"), and a compound written
    as one word ("Superbowl" finds "super" and "bowl"). Numbers must match exactly.

    Example:
        >>> vocabulary = Vocabulary(tokenize("Maizière spoke in India at the Super Bowl in 2019"))
        >>> words = ("Maiziere", "Indian", "Superbowl", "2019", "2024", "Texas")
        >>> [vocabulary.knows(t) for w in words for t in tokenize(w)]
        [True, True, True, True, False, False]
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        known = frozenset(tokens)
        self._tokens: Container[str] = known
        self._folded: Container[str] = frozenset(strip_accents(t) for t in known)

    @classmethod
    def over(cls, tokens: Container[str], folded: Container[str]) -> Vocabulary:
        """A vocabulary over sets kept elsewhere: ``folded`` must hold ``strip_accents`` of every token."""
        vocabulary = cls(())
        vocabulary._tokens, vocabulary._folded = tokens, folded
        return vocabulary

    def __contains__(self, token: object) -> bool:
        return token in self._tokens

    def knows(self, token: str) -> bool:
        """Whether ``token`` (a stemmed token of ``tokenize``) is in the corpus, allowing the slips above."""
        if token in self._tokens:
            return True
        folded = strip_accents(token)
        if folded in self._folded:
            return True
        if not folded.isalpha() or not 4 <= len(folded) <= 30:
            return False
        if any(near in self._folded for near in one_edit(folded)):
            return True
        return any(folded[:i] in self._folded and folded[i:] in self._folded for i in range(3, len(folded) - 2))
