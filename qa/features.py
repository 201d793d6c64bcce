"""Candidate answers and what is known about each: one row of named features per candidate.

A candidate is an answer unit (a sentence, a list item, a table row) of one
of the best retrieved passages, run on over what it introduces when it only
leads in ("The mission of the Department is to", "(1) In general"); a unit whose
quoted words and context (section path, table header) repeat a better-retrieved
candidate's (a copied document) is not a candidate again, so copies do not split
the answer's share. Its row
holds the signals ``qa.scorer`` weighs; every one is a plain number, most in
[0, 1]. ``FEATURES`` names the columns, and the fitted weights are stored by
these names, so a column is added or dropped here and in the fit together.

Signals about the unit against the question:

* ``similarity``, ``window``: cosine of the question with the unit, and with the
  unit joined to a neighbour (an answer often needs its neighbour's context);
* ``coverage``: the share of the question's IDF weight in the unit's words;
  ``context_coverage`` also counts its section path and table header;
  ``neighbour_coverage`` is the unit before it's (a question's words often sit
  in the sentence that introduces the answer);
* ``similarity_order``, ``coverage_order``: 1 / (1 + the unit's place among the
  question's candidates) by similarity and by context coverage;
* ``rarest``: whether the unit (or its context) holds the question's rarest word;
* ``bigrams``: the share of the question's adjacent content-word pairs that
  the unit holds in the same order, adjacent too; ``novelty``: the share of the
  unit's words that the question lacks (an answer adds something);
* ``similarity_gap``, ``coverage_gap``: how far below the question's best
  candidate the unit is (0 for the best), so that a weak set of candidates and
  a strong one read differently;
* ``type_found``, ``type_missing``: the question asks for a kind of answer
  (``qa.question.answer_type``) and the unit holds one, or does not;
* ``attribute_found``, ``attribute_missing``: the same for the attribute asked
  about ("the salary of", "what causes");
* ``dated_elsewhere``: the question names years the unit's own dates exclude;
* ``passage_missing``: the highest IDF (over the corpus's highest) of a
  question word that the unit's passage and section never use;
* ``length``, ``first_unit``, ``leads_in``: the unit's shape.

Signals about the passage and the question as a whole:

* ``passage_similarity``, ``fused_rank``, ``lexical``: the passage's cosine,
  1 / (1 + its fused rank), and its BM25 score over the best one's;
* ``heading``: the share of the passage's heading words the question uses;
* ``unknown_names``: the question names something the corpus never mentions;
* ``missing_weight``: the share of the question's IDF weight that no candidate
  passage uses: the question is about something these passages do not hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.index import VectorIndex
from qa.question import Profile, dated_elsewhere, gives_type
from qa.sentences import introduces, is_caption, starts_list_item
from qa.tokens import tokenize
from qa.types import Hit, Passage, Span

FEATURES = (
    "similarity",
    "window",
    "similarity_gap",
    "coverage",
    "context_coverage",
    "coverage_gap",
    "similarity_order",
    "coverage_order",
    "rarest",
    "neighbour_coverage",
    "bigrams",
    "novelty",
    "type_found",
    "type_missing",
    "attribute_found",
    "attribute_missing",
    "dated_elsewhere",
    "passage_missing",
    "length",
    "first_unit",
    "leads_in",
    "passage_similarity",
    "fused_rank",
    "lexical",
    "heading",
    "unknown_names",
    "missing_weight",
)
COLUMN = {name: i for i, name in enumerate(FEATURES)}
# Units are drawn from this many of the best passages.
EXTRACT_PASSAGES = 8
# An answer that only introduces what follows runs on over it up to this many characters in all.
LEAD_IN_CHARS = 600
# Passages whose unit tokens are kept; past this the cache starts afresh (a bound on memory).
TOKEN_CACHE_PASSAGES = 50_000


@dataclass(frozen=True, slots=True)
class Candidate:
    """An answer unit of a retrieved passage, and the span it would be quoted as.

    Attributes:
        unit: The sentence, list item or table row.
        span: ``unit``, run on over what it introduces (``through_lead_in``).
        rank: The passage's fused retrieval rank.
        position: The unit's place among its passage's units.
    """

    passage: Passage
    unit: Span
    span: Span
    rank: int
    position: int


def candidate_text(index: VectorIndex, candidate: Candidate) -> str:
    """The text a candidate would be quoted as (its span); the cross-encoder reads it after
    ``candidate_headings`` (``qa.reader.read_as``)."""
    return index.documents[candidate.passage.doc_id].text[candidate.span.start : candidate.span.end]


# The innermost headings the cross-encoder reads before a candidate: the section and the one above it
# ("§ 1158. Asylum › (a) Authority to apply for asylum"). Only 2 has been trained and measured (docs/fitting.md,
# "Reading the headings"); a statute's headings are long, so more would cut more candidates short.
HEADINGS_READ = 2


def candidate_headings(candidate: Candidate) -> str:
    """The innermost ``HEADINGS_READ`` headings above a candidate, joined by " › " ("" at a document's top)."""
    return " › ".join(candidate.passage.section_path[-HEADINGS_READ:])


def _pairs(tokens: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(tokens, tokens[1:], strict=False))


@dataclass(frozen=True, slots=True)
class PassageTokens:
    """What the features read of a passage that no question changes: each unit's token set and adjacent
    pairs, its context's tokens, whether each unit introduces what follows, and each unit's quoted span
    (``through_lead_in``)."""

    units: tuple[frozenset[str], ...]
    pairs: tuple[frozenset[tuple[str, str]], ...]
    context: frozenset[str]
    introduces: tuple[bool, ...]
    spans: tuple[Span, ...]

    @property
    def all(self) -> frozenset[str]:
        return self.context.union(*self.units)


def passage_tokens(index: VectorIndex, row: int) -> PassageTokens:
    """The tokens of passage ``row`` (its units' and its context's: section path and table header), and
    its units' lead-in flags and quoted spans.

    Tokenizing and the lead-in patterns are the costliest steps after the vectors, and none of them
    depends on the question, so each passage is read once (``VectorIndex.token_cache``).
    """
    cached: PassageTokens | None = index.token_cache.get(row)
    if cached is None:
        passage = index.passages[row]
        text = index.documents[passage.doc_id].text
        sequences = [tokenize(text[u.start : u.end]) for u in passage.units]
        cached = PassageTokens(
            tuple(frozenset(s) for s in sequences),
            tuple(frozenset(_pairs(s)) for s in sequences),
            frozenset(tokenize(" ".join(passage.section_path) + " " + passage.context)),
            tuple(introduces(text[u.start : u.end]) for u in passage.units),
            tuple(through_lead_in(passage, u) for u in passage.units),
        )
        if len(index.token_cache) >= TOKEN_CACHE_PASSAGES:
            index.token_cache.clear()
        index.token_cache[row] = cached
    return cached


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


def heading_match(question_tokens: frozenset[str], passage: Passage) -> float:
    """Share of the passage's nearest heading's words found in the question (0 without a heading)."""
    if not passage.section_path:
        return 0.0
    words = set(tokenize(passage.section_path[-1]))
    return len(words & question_tokens) / len(words) if words else 0.0


def through_lead_in(passage: Passage, unit: Span) -> Span:
    """``unit``, run on over what it introduces (``qa.sentences.introduces``).

    The next unit is taken, then the units after it while the last one taken
    introduces, or while they go on a list ("(A) ", "2. ", "- ") that a
    caption does not end, up to LEAD_IN_CHARS from the unit's start.
    """
    units = passage.units
    last = units.index(unit)
    if not introduces(passage.text[unit.start - passage.start : unit.end - passage.start]):
        return unit
    end, wants, in_list = unit.end, True, False
    for previous, following in zip(units[last:], units[last + 1 :], strict=False):
        text = passage.text[following.start - passage.start : following.end - passage.start]
        listed = starts_list_item(passage.text[previous.end - passage.start : following.end - passage.start].lstrip())
        goes_on = in_list and listed and not is_caption(text)
        if not (wants or goes_on) or (end != unit.end and following.end - unit.start > LEAD_IN_CHARS):
            break
        end, wants, in_list = following.end, introduces(text), listed
    return Span(unit.start, end)


def _share(weights: Sequence[tuple[str, float]], total: float, found: frozenset[str] | set[str]) -> float:
    return sum(w for t, w in weights if t in found) / total if total > 0 else 0.0


def candidate_features(
    index: VectorIndex,
    hits: Sequence[Hit],
    asked: Profile,
    query_vector: npt.NDArray[np.float32] | None,
    *,
    passages: int = EXTRACT_PASSAGES,
) -> tuple[list[Candidate], npt.NDArray[np.float32]]:
    """Every answer unit of the best ``passages`` hits, and its row of ``FEATURES``, in retrieval order.

    Args:
        index: The loaded index (unit vectors, tokens, IDF).
        hits: Retrieved passages, best first.
        asked: The question's profile (``qa.question.profile``).
        query_vector: The question's embedding; without it the cosines are 0.
        passages: How many hits to draw units from.
    """
    weights, total, tokens = asked.weights, asked.total_weight, asked.tokens
    question_pairs = _pairs(tokenize(asked.text))
    rarest = max(weights, key=lambda pair: pair[1])[0] if weights else None
    attribute = set(asked.attribute)
    ceiling = index.idf_ceiling or 1.0
    top_lexical = max((h.lexical_score for h in hits[:passages]), default=0.0)
    found: list[Candidate] = []
    rows: list[list[float]] = []
    seen_tokens: set[str] = set()
    # The candidates' texts (whitespace folded) with their context: a copy is not a candidate again, while the
    # same words under another heading or table header (a row of two timetables) are another answer.
    quoted: set[tuple[str, str]] = set()
    for hit in hits[:passages]:
        passage = hit.passage
        row = index.by_id[passage.id]
        if query_vector is not None:
            vectors = index.unit_vectors_of(row)
            sims = vectors @ query_vector
            windows = window_similarity(vectors, sims)
        else:
            sims = windows = np.zeros(len(passage.units), dtype=np.float32)
        cached = passage_tokens(index, row)
        context, in_passage = cached.context, cached.all
        seen_tokens |= in_passage
        missing = max((w for t, w in weights if t not in in_passage), default=0.0) / ceiling
        heading = heading_match(tokens, passage)
        context_key = " › ".join(passage.section_path) + " | " + passage.context
        lexical = hit.lexical_score / top_lexical if top_lexical > 0 else 0.0
        previous = 0.0
        units = zip(passage.units, cached.units, cached.pairs, sims, windows, strict=True)
        for i, (unit, unit_set, unit_pairs, sim, window) in enumerate(units):
            text = passage.text[unit.start - passage.start : unit.end - passage.start]
            span = cached.spans[i]
            quote = (" ".join(passage.text[span.start - passage.start : span.end - passage.start].split()), context_key)
            if quote in quoted:
                # The same words under the same headings already stand as a better-retrieved candidate (a copied
                # document): as a second candidate it would only split the answer's share and margin with itself.
                previous = _share(weights, total, unit_set | context)
                continue
            quoted.add(quote)
            covered = _share(weights, total, unit_set)
            pairs = len(question_pairs & unit_pairs) / len(question_pairs) if question_pairs else 0.0
            novelty = len(unit_set - tokens) / len(unit_set) if unit_set else 0.0
            in_context = _share(weights, total, unit_set | context)
            asks_type = asked.answer_type != "none"
            has_type = asks_type and gives_type(asked, text)
            has_attribute = bool(attribute) and bool(attribute & (unit_set | context))
            found.append(Candidate(passage, unit, span, hit.rank, i))
            rows.append([
                float(sim), float(window), 0.0, covered, in_context, 0.0, 0.0, 0.0,
                float(rarest in unit_set or rarest in context), previous, pairs, novelty,
                float(has_type), float(asks_type and not has_type),
                float(has_attribute), float(bool(attribute) and not has_attribute),
                float(dated_elsewhere(asked, text, passage.text)), missing,
                math.log1p(len(text) / 100), float(i == 0), float(cached.introduces[i]),
                hit.dense_score, 1.0 / (1 + hit.rank), lexical, heading,
                float(bool(asked.unknown)), 0.0,
            ])  # fmt: skip
            previous = in_context
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))
    if len(rows):
        for gap, source in (("similarity_gap", "similarity"), ("coverage_gap", "coverage")):
            column = matrix[:, COLUMN[source]]
            matrix[:, COLUMN[gap]] = column - column.max()
        for order, source in (("similarity_order", "similarity"), ("coverage_order", "context_coverage")):
            places = np.empty(len(rows), dtype=np.float32)
            places[np.argsort(-matrix[:, COLUMN[source]], kind="stable")] = np.arange(len(rows))
            matrix[:, COLUMN[order]] = 1.0 / (1.0 + places)
        matrix[:, COLUMN["missing_weight"]] = 1.0 - _share(weights, total, seen_tokens) if total > 0 else 0.0
    return found, matrix
