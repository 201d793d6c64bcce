"""Word tokens for the lexical index and for matching question words in sentences.

Lower-cased words and numbers (``3,000`` and ``2.8`` stay whole), English
stop words dropped, and the Snowball English stemmer, so that "agencies"
finds "agency" and "authorizes" finds "authorized".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

# Bumped whenever tokens change: the lexical index must then be rebuilt.
TOKENIZER_VERSION = 2

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


_STEMMER = snowballstemmer.stemmer("english")


# Month names and their abbreviations meet at the abbreviation ("January" finds "Jan-Mar").
_MONTHS = {
    name: name[:3]
    for name in "january february march april may june july august september october november december".split()
} | {"sept": "sep"}


def _bare(word: str) -> str:
    """A lower-cased word without its possessive ending."""
    return word[:-2] if word.endswith(("'s", "’s")) else word


@lru_cache(maxsize=1 << 17)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-cased word, possessive removed; months abbreviated."""
    word = _bare(word)
    return _MONTHS.get(word) or str(_STEMMER.stemWord(word))


def tokenize(text: str) -> list[str]:
    """Content tokens of a text, in order, with repeats.

    Example:
        >>> tokenize("How many agencies participate in Secure Communities?")
        ['agenc', 'particip', 'secur', 'communiti']
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = (match.group(0).replace(",", "") for match in _TOKEN.finditer(folded))
    return [stem(word) for word in words if word not in STOPWORDS and _bare(word) not in STOPWORDS]
