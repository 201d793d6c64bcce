"""``python -m fitting.probe``: what a new candidate feature would buy, measured before it is built in.

    python -m fitting.probe                # every probe in PROBES, each set's left-out figures with and without
    python -m fitting.probe definition     # one of them

A feature built into ``qa.features`` changes the candidate tables (``python -m fitting --tables``) and the
cross-encoder, whose training pairs the scorer ranks (``python -m fitting.reader``, 16 minutes on 2 cores).
A probe skips both: it computes its columns from the texts the
tables were built from (each question and candidate, kept in the cache by ``python -m fitting --tables``),
appends them to the committed tables, and prints each set's leave-one-dataset-out figures of the first ranker
(no cross-encoder) fitted with them beside those fitted without, in the same run. The fit gives a probe's
columns whatever sign it finds. A probe reads the candidate's own text only, not its passage or section
path; one that pays is built into ``qa.question`` (its question patterns, which live there once) and
``qa.features`` (its columns).

The probes kept here are the ones tried and not built in (docs/fitting.md gives their figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fitting.__main__ import HEADER, MEAN_HEADER, TEXTS, _mean, _pairs, _table
from fitting.fit import Figures, leave_one_out, question_slices
from fitting.sets import SET_NAMES
from fitting.tables import Table, Texts, load_table, load_texts
from qa.defaults import DEFAULT_MODEL
from qa.features import FEATURES
from qa.question import _AUXILIARY, answer_type, year_ranges
from qa.tokens import tokenize

# A probe's columns for one question's candidates: (question, candidates) -> one row per candidate.
Columns = Callable[[str, Sequence[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class Probe:
    """Columns appended to every candidate's features, which both the ranker and the confidence may weigh."""

    name: str
    columns: tuple[str, ...]
    compute: Columns
    about: str = ""


# "What is a 287(g) agreement?", "What does the term alien mean?", "What counts as a national under ...?"
_DEFINITION_QUESTIONS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^\W*(?:what|who)\s+(?:is|are|was|were)\s+(?:(?:a|an|the)\s+)?(?P<term>[^?]{1,60}?)\s*\??\s*$",
        r"^\W*what\s+(?:does|do|did)\s+(?:the\s+(?:term|word|phrase)\s+)?(?P<term>[^?]{1,60}?)\s+mean\b",
        r"^\W*what\s+(?:is|was)\s+(?:meant\s+by|the\s+(?:definition|meaning)\s+of)\s+(?:(?:a|an|the)\s+)?"
        r"(?P<term>[^?]{1,60}?)\s*\??\s*$",
        r"^\W*(?:what|who)\s+(?:counts|qualifies|is\s+considered|is\s+treated)\s+as\s+(?:(?:a|an|the)\s+)?"
        r"(?P<term>[^?]{1,60}?)\s*\??\s*$",
    )
)
# A term that holds one of these is a clause, not a term ("What is it that does ...?").
_CLAUSE = re.compile(r"\b(?:do|does|did|is|are|was|were|has|have|had|can|will|would|should|must|may|of)\b", re.I)
# The term ends before a qualifier: "a national | under the immigration statute".
_QUALIFIER = re.compile(r"\s+(?:under|in|for|on|at|by|with|within|according|as|from|to)\s+", re.IGNORECASE)
# What follows a term that a sentence defines: "X means", "X is a", "X (the Act) refers to", "X: ...".
_DEFINING = (
    r"(?:means|mean|refers?\s+to|is\s+defined|are\s+defined|is\s+an?|are\s+an?|is\s+the|are\s+the|is\s+one"
    r"|is\s+any|includes?|consists?\s+of|describes?|denotes?|—|:|,\s+an?\b|\(|,?\s+which\s+(?:is|are))"
)


def defined_term(question: str) -> str | None:
    """The term a question asks to define, up to six words, or None.

    Example:
        >>> defined_term("What counts as a national under the statute?"), defined_term("What is the population of X?")
        ('national', None)
    """
    for pattern in _DEFINITION_QUESTIONS:
        if match := pattern.search(question.strip()):
            term = _QUALIFIER.split(match["term"].strip(" \"'“”"), maxsplit=1)[0]
            if len(term.split()) <= 6 and not _CLAUSE.search(term):
                return term
    return None


def defines(term: str, text: str) -> bool:
    """Whether ``text`` reads as a definition of ``term``: its last word (any ending) before a defining
    phrase, or "the term “...”"."""
    head = term.split()[-1].lower().strip(".,")
    prefix = head[: max(4, len(head) - 2)]
    lowered = text.lower()
    if re.search(r"\bthe\s+terms?\s+[“\"']", lowered) and prefix in lowered:
        return True
    return bool(re.search(rf"{re.escape(prefix)}\w*[”\"'’)]*\s*(?:\([^)]{{0,40}}\)\s*)?{_DEFINING}", lowered))


def definition_columns(question: str, candidates: Sequence[str]) -> npt.NDArray[np.float32]:
    """``definition_found`` and ``definition_missing``: for a question asking what a term is, whether the
    candidate defines it."""
    out = np.zeros((len(candidates), 2), dtype=np.float32)
    if (term := defined_term(question)) is not None:
        for i, text in enumerate(candidates):
            out[i, 0 if defines(term, text) else 1] = 1.0
    return out


# A question about the present ("the current fee", "this year"), and a text that dates what it says.
_PRESENT_QUESTION = re.compile(
    r"\b(?:current(?:ly)?|presently|at present|nowadays|today|right now|now|this year|these days|latest"
    r"|most recent|to date|so far)\b",
    re.IGNORECASE,
)
_DATED = re.compile(
    r"\b(?:current(?:ly)?|presently|at present|nowadays|today|now|this year|as of|latest|most recent"
    r"|recent(?:ly)?|to date|so far)\b",
    re.IGNORECASE,
)


def time_columns(question: str, candidates: Sequence[str]) -> npt.NDArray[np.float32]:
    """``time_unmet``: the question names years and the candidate none that overlaps them, or it asks about
    the present and the candidate gives neither a year nor a word that dates it."""
    asked = year_ranges(question)
    present = not asked and bool(_PRESENT_QUESTION.search(question))
    out = np.zeros((len(candidates), 1), dtype=np.float32)
    for i, text in enumerate(candidates):
        years = year_ranges(text)
        if asked:
            out[i, 0] = not any(a <= d and c <= b for a, b in asked for c, d in years)
        elif present:
            out[i, 0] = not (years or _DATED.search(text))
    return out


_YES_NO = re.compile(rf"^\W*(?:{_AUXILIARY}|may|shall)\b", re.IGNORECASE)


def question_columns(question: str, candidates: Sequence[str]) -> npt.NDArray[np.float32]:
    """``yes_no``, ``typed`` and ``question_length``: the question's own shape, the same for each of its
    candidates (so only the confidence can weigh it): a yes/no question, one that asks for a kind of
    answer, and the log of its content words."""
    row = [float(bool(_YES_NO.search(question))), float(answer_type(question) != "none"),
           float(np.log1p(len(tokenize(question))))]  # fmt: skip
    return np.tile(np.asarray(row, dtype=np.float32), (len(candidates), 1))


PROBES = {
    probe.name: probe
    for probe in (
        Probe(
            "definition",
            ("definition_found", "definition_missing"),
            definition_columns,
            about="a 'what is X' question against a candidate that defines X",
        ),
        Probe(
            "time",
            ("time_unmet",),
            time_columns,
            about="the years or the present asked about, absent from the candidate",
        ),
        Probe(
            "question",
            ("yes_no", "typed", "question_length"),
            question_columns,
            about="the question's shape: yes/no, a kind of answer asked for, its length",
        ),
    )  # fmt: skip
}


def with_probe(table: Table, texts: Texts, probe: Probe) -> Table:
    """``table`` with ``probe``'s columns appended to its features.

    Raises:
        ValueError: If the texts are not the table's (another count of questions or candidates).
    """
    if len(texts.questions) != table.n_questions or len(texts.candidates) != len(table.label):
        raise ValueError(f"{table.name}: the texts are not those of the table; run python -m fitting --tables")
    extra = np.zeros((len(table.label), len(probe.columns)), dtype=np.float32)
    for q, rows in enumerate(question_slices(table)):
        extra[rows] = probe.compute(texts.questions[q], texts.candidates[rows])
    return dataclasses.replace(table, features=np.hstack([table.features, extra]))


def compare(
    tables: Sequence[Table], texts: dict[str, Texts], probe: Probe, plain: dict[str, Figures] | None = None
) -> dict[str, tuple[Figures, Figures]]:
    """Each set's left-out figures with ``probe``'s columns and without (``plain``: ``leave_one_out`` of
    ``tables``, computed when None), fitted the same way."""
    probed = [with_probe(t, texts[t.name], probe) for t in tables]
    held = leave_one_out(probed, model=DEFAULT_MODEL, names=FEATURES + probe.columns)
    plain = leave_one_out(tables, model=DEFAULT_MODEL) if plain is None else plain
    return {t.name: (held[t.name], plain[t.name]) for t in tables}


def report(probe: Probe, figures: dict[str, tuple[Figures, Figures]]) -> str:
    """Each set's figures with / without the probe, then their means over the sets."""
    rows = [[name, str(with_.n), *_pairs(with_, without)] for name, (with_, without) in figures.items()]
    means = zip(_mean(f[0] for f in figures.values()), _mean(f[1] for f in figures.values()), strict=True)
    title = (f"Probe {probe.name} ({', '.join(probe.columns)}: {probe.about}); left out, first ranker, "
             "each cell with / without")  # fmt: skip
    return "\n\n".join([
        title,
        _table(rows, ["left out", "questions", *HEADER]),
        _table([["mean", *[f"{a:.3f} / {b:.3f}" for a, b in means]]], ["over the sets", *MEAN_HEADER]),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fitting.probe", description=__doc__.split("\n")[0])
    parser.add_argument("probes", nargs="*", metavar="PROBE", help=f"of {', '.join(PROBES)} (all when none named)")
    args = parser.parse_args(argv)
    if unknown := [name for name in args.probes if name not in PROBES]:
        parser.error(f"no probe {', '.join(unknown)}; the probes are {', '.join(PROBES)}")
    tables = [load_table(name) for name in SET_NAMES]
    try:
        texts = {name: load_texts(name, TEXTS) for name in SET_NAMES}
    except FileNotFoundError:
        print(f"the tables' texts are not in {TEXTS}: run python -m fitting --tables first", file=sys.stderr)
        return 1
    plain = leave_one_out(tables, model=DEFAULT_MODEL)  # the baseline, the same for every probe
    for name in args.probes or PROBES:
        print(report(PROBES[name], compare(tables, texts, PROBES[name], plain)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
