"""Pick the sentence, list item or table row that answers a question.

Every answer unit of the retrieved passages is scored by a weighted sum of
four signals, all in [0, 1] or close to it:

* ``similarity``: cosine of the question and the unit's precomputed vector;
* ``window``: the best cosine of the question and the unit joined to the unit
  before or after it, since an answer often needs its neighbour's context;
* ``coverage``: the share of the question's IDF weight found in the unit's
  words (the section path and a table's header count at half weight), which
  catches names and numbers that embeddings blur;
* ``passage``: cosine of the question and the whole passage, for context;
* ``neighbour``: coverage of the unit before it, since a question's words
  often sit in the sentence that introduces the answer;
* ``rank``: 1 / (1 + rank) of the passage in the fused retrieval ranking;
* ``heading``: the share of the unit's own heading words that the question
  uses: a question that names a section is about that section;
* ``answer type``: 1 when the question asks for a quantity or a date ("how
  many", "when", "what year") and the unit holds a number the question does
  not, asks "who" and the unit names someone the question does not, or asks
  what an acronym stands for and the unit spells it out.

The weights were fitted once, by grid search, on the development sets
(tests/data/gold.jsonl and XQuAD dev); they are constants here, not
per-question rules. When the two best units are adjacent sentences of one
passage and nearly tied, the answer spans both; when it only introduces what
follows ("The mission of the Department is to", "(1) In general"), it runs on
over what it introduces (``answer_span``).
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.index import VectorIndex
from qa.sentences import introduces, is_caption, starts_list_item, without_list_marker
from qa.tokens import tokenize
from qa.types import Hit, Passage, Span

W_SIMILARITY = 0.45
W_WINDOW = 0.20
W_COVERAGE = 0.35
W_PASSAGE = 0.15
W_NEIGHBOUR = 0.10
W_RANK = 0.05
W_TYPE = 0.10
W_HEADING = 0.10
# Two adjacent best units closer than this in score are returned together.
MERGE_MARGIN = 0.05
# Words of the section path or a table header count this much towards coverage.
CONTEXT_WEIGHT = 1.0
# Units are drawn from this many of the best passages.
EXTRACT_PASSAGES = 8
# An answer that only introduces what follows runs on over it up to this many characters in all.
LEAD_IN_CHARS = 600


@dataclass(frozen=True, slots=True)
class Candidate:
    """An answer unit with its score and the signals behind it."""

    passage: Passage
    unit: Span
    score: float
    similarity: float
    coverage: float
    rank: int


# "When" asks for a time only before a verb or at the end ("When did ...?", "... ended when?"); elsewhere it
# joins two clauses ("What is it called when ...?").
_QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|long|old|far|large|big|tall|often|few)"
    r"|when(?=\s+(did|does|do|was|were|is|are|will|would|could|can|has|have|had|should|must|might)\b|\s*\?)"
    r"|(what|which|in what) (year|percentage|percent|age|number|amount|date|time|decade|century|month|day))\b",
    re.IGNORECASE,
)
# "Who ...?", or "What/which <person noun> ...?" ("What actress ...?", "Which famous poet ...?").
_PERSON_QUESTION = re.compile(
    r"\b(who|whom|whose)\b|\b(what|which)\s+(\w+\s+)?(actor|actress|artist|author|composer|emperor|explorer"
    r"|king|leader|man|painter|person|philosopher|player|poet|politician|pope|president|queen|ruler|scientist"
    r"|senator|singer|woman|writer)s?\b",
    re.IGNORECASE,
)
# "What does the acronym IIRIRA stand for?", "What did the LMP acronym stand for?", "What is NATO short for?"
_ACRONYM_QUESTION = re.compile(r"\b([A-Z][A-Za-z&]*[A-Z])s?\b(?:\s+[a-z]+)?\s+(?:stands?|stood|short)\s+for\b")
_NUMBER = re.compile(r"\d+")
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+")
_WORD = re.compile(r"[^\W\d_][\w’'-]*")
# Small words an expansion may hold without a letter in the acronym ("Department of Homeland Security").
_LINKING = frozenset("of and the for on in to at by de".split())


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


def answer_type_match(question: str, unit_text: str) -> float:
    """1.0 when the unit holds the kind of thing the question asks for and the question lacks it."""
    if acronym := _ACRONYM_QUESTION.search(question):
        return 1.0 if expands(acronym.group(1), unit_text) else 0.0
    if _QUANTITY_QUESTION.search(question):
        numbers = set(_NUMBER.findall(without_list_marker(unit_text)))  # "(1) " is no quantity
        return 1.0 if numbers - set(_NUMBER.findall(question)) else 0.0
    if _PERSON_QUESTION.search(question):
        lowered = question.lower()
        return 1.0 if any(name.lower() not in lowered for name in _NAME.findall(unit_text)) else 0.0
    return 0.0


def asks_for_type(question: str) -> bool:
    """Whether the question asks for a quantity, a date, a person or what an acronym stands for."""
    return any(p.search(question) for p in (_ACRONYM_QUESTION, _QUANTITY_QUESTION, _PERSON_QUESTION))


def question_weights(question: str, index: VectorIndex) -> dict[str, float]:
    """IDF weight of each distinct question token; unknown tokens get the index's highest IDF."""
    return {token: index.idf.get(token, index.idf_ceiling) for token in dict.fromkeys(tokenize(question))}


# Passages whose unit tokens are kept; past this the cache starts afresh (a bound on memory).
TOKEN_CACHE_PASSAGES = 50_000


def unit_tokens(index: VectorIndex, row: int) -> tuple[frozenset[str], ...]:
    """Token sets of passage ``row``'s units, then of its context (section path and table header).

    Tokenizing is the costliest step of extraction after the vectors, and a
    passage's tokens never change, so each passage is tokenized once.
    """
    cached = index.token_cache.get(row)
    if cached is None:
        passage = index.passages[row]
        text = index.documents[passage.doc_id].text
        units = (frozenset(tokenize(text[u.start : u.end])) for u in passage.units)
        context = frozenset(tokenize(" ".join(passage.section_path) + " " + passage.context))
        cached = (*units, context)
        if len(index.token_cache) >= TOKEN_CACHE_PASSAGES:
            index.token_cache.clear()
        index.token_cache[row] = cached
    return cached


def coverage(weights: dict[str, float], tokens: AbstractSet[str], context: AbstractSet[str] = frozenset()) -> float:
    """Share of the question's weight found in ``tokens`` (full) or ``context`` (CONTEXT_WEIGHT)."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = sum(w if t in tokens else CONTEXT_WEIGHT * w if t in context else 0.0 for t, w in weights.items())
    return found / total


def window_similarity(vectors: npt.NDArray[np.float32], sims: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """For each unit, the best cosine of the question with the unit joined to a neighbour.

    The joined vector is the normalised sum of the two unit vectors, so no extra embedding is
    needed: cos(q, (a + b) / |a + b|) = (q.a + q.b) / sqrt(2 + 2 a.b) for unit vectors a and b.
    A unit alone (no neighbour) scores its own cosine.
    """
    best = sims.astype(np.float32).copy()
    if len(sims) > 1:
        adjacent = np.einsum("ij,ij->i", vectors[:-1], vectors[1:])
        joined = (sims[:-1] + sims[1:]) / np.sqrt(np.maximum(2.0 + 2.0 * adjacent, 1e-12))
        best[:-1] = np.maximum(best[:-1], joined)
        best[1:] = np.maximum(best[1:], joined)
    return best


def heading_match(question_tokens: AbstractSet[str], passage: Passage) -> float:
    """Share of the passage's nearest heading's words found in the question (0 without a heading)."""
    if not passage.section_path:
        return 0.0
    words = set(tokenize(passage.section_path[-1]))
    return len(words & question_tokens) / len(words) if words else 0.0


def candidates(
    index: VectorIndex,
    hits: list[Hit],
    question: str,
    query_vector: npt.NDArray[np.float32] | None,
    *,
    passages: int = EXTRACT_PASSAGES,
) -> list[Candidate]:
    """Score every answer unit of the best ``passages`` hits, best first.

    Args:
        index: The loaded index (unit vectors and IDF).
        hits: Retrieved passages, best first.
        question: The question text.
        query_vector: The question's embedding; without it similarity is 0.
        passages: How many hits to draw units from.
    """
    weights = question_weights(question, index)
    question_tokens = set(weights)
    scored: list[Candidate] = []
    for hit in hits[:passages]:
        passage = hit.passage
        row = index.by_id[passage.id]
        lo, hi = int(index.unit_offsets[row]), int(index.unit_offsets[row + 1])
        vectors = np.asarray(index.unit_vectors[lo:hi], dtype=np.float32)
        if query_vector is not None:
            sims = vectors @ query_vector
            windows = window_similarity(vectors, sims)
        else:
            sims = windows = np.zeros(hi - lo, dtype=np.float32)
        *tokens, context = unit_tokens(index, row)
        heading = heading_match(question_tokens, passage)
        text = index.documents[passage.doc_id].text
        previous = 0.0
        for unit, unit_token_set, sim, window in zip(passage.units, tokens, sims, windows, strict=True):
            unit_text = text[unit.start : unit.end]
            cov = coverage(weights, unit_token_set, context)
            score = (
                W_SIMILARITY * float(sim)
                + W_WINDOW * float(window)
                + W_COVERAGE * cov
                + W_PASSAGE * hit.dense_score
                + W_NEIGHBOUR * previous
                + W_RANK / (1 + hit.rank)
                + W_TYPE * answer_type_match(question, unit_text)
                + W_HEADING * heading
            )
            scored.append(Candidate(passage, unit, score, float(sim), cov, hit.rank))
            previous = cov
    scored.sort(key=lambda c: (-c.score, c.rank, c.unit.start))
    return scored


def rerank(hits: list[Hit], ranked: list[Candidate]) -> list[Hit]:
    """Hits ordered by their best answer unit, then the hits no unit was drawn from, in retrieval order.

    The unit scores weigh sentence-level evidence that passage retrieval cannot
    see, so the passage holding the answer comes first.
    """
    order = {passage_id: i for i, passage_id in enumerate(dict.fromkeys(c.passage.id for c in ranked))}
    last = len(order)
    return sorted(hits, key=lambda hit: (order.get(hit.passage.id, last), hit.rank))


def citable(ranked: list[Candidate], answer: Span, limit: int) -> list[Candidate]:
    """The best candidates, at most ``limit``: the answer's own unit first, then units outside the answer."""
    chosen = ranked[:1]
    for candidate in ranked[1:]:
        if len(chosen) == limit:
            break
        if not (answer.start <= candidate.unit.start and candidate.unit.end <= answer.end):
            chosen.append(candidate)
    return chosen


def _through_lead_in(passage: Passage, span: Span) -> Span:
    """``span``, run on over what its last unit introduces (``qa.sentences.introduces``).

    The next unit is taken, then the units after it while the last one taken
    introduces, or while they go on a list ("(A) ", "2. ", "- ") that a
    caption does not end, up to LEAD_IN_CHARS from the span's start.
    """
    units = passage.units
    last = next((i for i, unit in enumerate(units) if unit.end == span.end), None)
    if last is None or not introduces(passage.text[units[last].start - passage.start : span.end - passage.start]):
        return span
    end, wants, in_list = span.end, True, False
    for previous, unit in zip(units[last:], units[last + 1 :], strict=False):
        text = passage.text[unit.start - passage.start : unit.end - passage.start]
        listed = starts_list_item(passage.text[previous.end - passage.start : unit.end - passage.start].lstrip())
        goes_on = in_list and listed and not is_caption(text)
        if not (wants or goes_on) or (end != span.end and unit.end - span.start > LEAD_IN_CHARS):
            break
        end, wants, in_list = unit.end, introduces(text), listed
    return Span(span.start, end)


def answer_span(ranked: list[Candidate]) -> Span:
    """The answer's span: the best unit, or the best two when adjacent and within MERGE_MARGIN.

    When the span only introduces what follows (``qa.sentences.introduces``:
    "The mission of the Department is to", "(1) In general"), it runs on over
    the units after it in its passage, up to LEAD_IN_CHARS (the chunker keeps
    such a unit with what it introduces).

    Raises:
        ValueError: If there is no candidate.
    """
    if not ranked:
        raise ValueError("no candidate to answer from")
    best = ranked[0]
    span = best.unit
    if len(ranked) > 1:
        second = ranked[1]
        units = best.passage.units
        if second.passage.id == best.passage.id and best.score - second.score <= MERGE_MARGIN:
            i, j = sorted((units.index(best.unit), units.index(second.unit)))
            if j == i + 1:
                span = Span(units[i].start, units[j].end)
    return _through_lead_in(best.passage, span)
