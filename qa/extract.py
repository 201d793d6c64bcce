"""Pick the sentence, list item or table row that answers a question.

Every answer unit of the retrieved passages is scored by a weighted sum of
four signals, all in [0, 1] or close to it:

* ``similarity``: cosine of the question and the unit's precomputed vector;
* ``coverage``: the share of the question's IDF weight found in the unit's
  words (the section path and a table's header count at half weight), which
  catches names and numbers that embeddings blur;
* ``passage``: cosine of the question and the whole passage, for context;
* ``neighbour``: coverage of the unit before it, since a question's words
  often sit in the sentence that introduces the answer.

The weights were fitted once on the development sets and are constants
here, not per-question rules.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.index import VectorIndex
from qa.tokens import tokenize
from qa.types import Hit, Passage, Span

W_SIMILARITY = 0.45
W_COVERAGE = 0.35
W_PASSAGE = 0.15
W_NEIGHBOUR = 0.05
# Words of the section path or a table header count this much towards coverage.
CONTEXT_WEIGHT = 0.5
# Units are drawn from this many of the best passages.
EXTRACT_PASSAGES = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    """An answer unit with its score and the signals behind it."""

    passage: Passage
    unit: Span
    score: float
    similarity: float
    coverage: float
    rank: int


def question_weights(question: str, idf: dict[str, float]) -> dict[str, float]:
    """IDF weight of each distinct question token; unknown tokens get the highest IDF seen."""
    ceiling = max(idf.values(), default=1.0)
    return {token: idf.get(token, ceiling) for token in dict.fromkeys(tokenize(question))}


def coverage(weights: dict[str, float], tokens: AbstractSet[str], context: AbstractSet[str] = frozenset()) -> float:
    """Share of the question's weight found in ``tokens`` (full) or ``context`` (CONTEXT_WEIGHT)."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = sum(w if t in tokens else CONTEXT_WEIGHT * w if t in context else 0.0 for t, w in weights.items())
    return found / total


def _context_tokens(passage: Passage) -> set[str]:
    return set(tokenize(" ".join(passage.section_path) + " " + passage.context))


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
    weights = question_weights(question, index.idf)
    scored: list[Candidate] = []
    for hit in hits[:passages]:
        passage = hit.passage
        row = index.by_id[passage.id]
        lo, hi = int(index.unit_offsets[row]), int(index.unit_offsets[row + 1])
        sims = (
            np.asarray(index.unit_vectors[lo:hi] @ query_vector, dtype=np.float32)
            if query_vector is not None
            else np.zeros(hi - lo, dtype=np.float32)
        )
        context = _context_tokens(passage)
        text = index.documents[passage.doc_id].text
        previous = 0.0
        for unit, sim in zip(passage.units, sims, strict=True):
            tokens = set(tokenize(text[unit.start : unit.end]))
            cov = coverage(weights, tokens, context)
            score = W_SIMILARITY * float(sim) + W_COVERAGE * cov + W_PASSAGE * hit.dense_score + W_NEIGHBOUR * previous
            scored.append(Candidate(passage, unit, score, float(sim), cov, hit.rank))
            previous = cov
    scored.sort(key=lambda c: (-c.score, c.rank, c.unit.start))
    return scored


def one_per_passage(ranked: list[Candidate], limit: int) -> list[Candidate]:
    """The best candidate of each passage, in score order, at most ``limit``."""
    seen: set[str] = set()
    chosen: list[Candidate] = []
    for candidate in ranked:
        if candidate.passage.id not in seen:
            seen.add(candidate.passage.id)
            chosen.append(candidate)
            if len(chosen) == limit:
                break
    return chosen
