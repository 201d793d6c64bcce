"""Candidate tables: every question's candidates with their features and whether each holds the answer.

For each question of a set the engine's own steps run (``qa.retrieve.retrieve``,
``qa.question.profile``, ``qa.features.candidate_features``), and each candidate
is labelled:

* ``label``: its answer span holds a gold answer: where the gold gives offsets
  (SQuAD sets), the span covers one; otherwise its text contains one
  (``qa.metrics.contains_answer``). Always 0 for an unanswerable question.
* ``contained``: its text contains a gold answer, as ``qa eval`` counts containment;
  ``pair_contained``: the same for it joined to the next unit of its passage
  (``qa.selection.answer_span`` quotes two adjacent units when nearly tied);
  ``position``: its unit's place in its passage, and ``hit``: its passage's place
  in the retrieval (the two say which candidates are adjacent).
* ``half``, ``pair_half``: where the gold gives offsets, the span (or the span
  joined to the next unit) overlaps at least half of a gold span's characters;
  elsewhere the same as ``contained`` and ``pair_contained``. It measures the
  span where the gold locates it: a sentence that repeats a short answer's words
  elsewhere does not count, one holding most of a span that crosses a sentence's
  end does. The report prints it beside containment (``qa.evaluate.covers_half``, ``fitting.fit.by_half``).

Each answerable question (every ``NEAR_MISS_EVERY``-th of PolicyQA's, whose
568 distinct questions repeat over 20 policies) is also asked as a **near
miss**: its retrieved passages without the ones that hold its answer (its
gold paragraph, or the passages containing a gold answer), as if its
paragraph had never been indexed. The topic is there and the answer is not:
the right response is a refusal. A near miss whose candidates still hold a
gold answer (the fact is stated twice) is left out. Near misses count as
unanswerable questions, flagged ``near_miss``; the figures of a set report
them apart.

A table is written as ``fitting/tables/<set>.npz`` (arrays, no pickle) and read
back by ``load_table``; ``python -m fitting --tables`` rebuilds them.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fitting.indexes import CACHE, index_of, log
from fitting.sets import Corpus, corpora
from qa.defaults import DEFAULT_MODEL
from qa.embed import Embedder
from qa.evaluate import covers_half, is_relevant
from qa.features import FEATURES, candidate_features, candidate_headings, candidate_text, through_lead_in
from qa.gold import GoldItem
from qa.index import VectorIndex
from qa.metrics import contains_answer
from qa.question import Profile, profile
from qa.retrieve import retrieve
from qa.types import Hit

TABLES = Path(__file__).resolve().parent / "tables"
# Passages retrieved per question, as the engine retrieves them (qa.engine.RETRIEVE_PASSAGES).
RETRIEVE = 10
# A near miss retrieves this many more, so that ten remain once the answer's passages are dropped.
NEAR_MISS_EXTRA = 10
NEAR_MISS_EVERY = {"policyqa": 4}


@dataclass(frozen=True, slots=True)
class Table:
    """One set's candidates: ``features[i]`` belongs to question ``question[i]``."""

    name: str
    features: npt.NDArray[np.float32]
    question: npt.NDArray[np.int32]
    label: npt.NDArray[np.int8]
    contained: npt.NDArray[np.int8]
    unanswerable: npt.NDArray[np.int8]  # per question
    near_miss: npt.NDArray[np.int8]  # per question: a near miss (also unanswerable)
    pair_contained: npt.NDArray[np.int8]
    position: npt.NDArray[np.int16]
    hit: npt.NDArray[np.int8]
    # The cross-encoder's score of each candidate (qa.reader), from a model trained without this set
    # (fitting.reader); None until ``python -m fitting.reader`` has scored the table.
    reader: npt.NDArray[np.float32] | None = None
    # Whether the candidate (joined to the next unit) covers half a gold span (module docstring); None in a
    # table written before these columns, read as ``contained`` and ``pair_contained``.
    half: npt.NDArray[np.int8] | None = None
    pair_half: npt.NDArray[np.int8] | None = None

    @property
    def n_questions(self) -> int:
        return len(self.unanswerable)


def _labels(item: GoldItem, doc_id: str, start: int, end: int, text: str) -> tuple[int, int]:
    if item.unanswerable:
        return 0, 0
    contained = int(contains_answer(text, item.answers))
    if item.spans:
        return int(any(d == doc_id and start <= s and e <= end for d, s, e in item.spans)), contained
    return contained, contained


@dataclass(frozen=True, slots=True)
class Texts:
    """What a table's rows read: each question's text, each candidate's (its span) and the headings above it
    (``qa.features.candidate_headings``), for the cross-encoder."""

    questions: list[str]
    candidates: list[str]
    headings: list[str] = dataclasses.field(default_factory=list)


class Labels(NamedTuple):
    """One candidate's labels and place (the Table's columns of the same names)."""

    label: int
    contained: int
    pair_contained: int
    position: int
    hit: int
    half: int
    pair_half: int


def _rows(
    index: VectorIndex, item: GoldItem, asked: Profile, vector: npt.NDArray[np.float32], hits: list[Hit]
) -> tuple[npt.NDArray[np.float32], list[Labels], list[tuple[str, str]]]:
    """The candidates' features of one retrieval, each candidate's labels, and each candidate's text and
    headings."""
    found, matrix = candidate_features(index, hits, asked, vector)
    order = {passage_id: i for i, passage_id in enumerate(dict.fromkeys(c.passage.id for c in found))}
    labels = []
    texts = [(candidate_text(index, c), candidate_headings(c)) for c in found]
    for candidate in found:
        passage, span = candidate.passage, candidate.span
        text = index.documents[passage.doc_id].text
        label, contained = _labels(item, passage.doc_id, span.start, span.end, text[span.start : span.end])
        half = int(covers_half(item, passage.doc_id, span.start, span.end, bool(contained)))
        pair, pair_half = contained, half
        if candidate.position + 1 < len(passage.units) and not item.unanswerable:
            end = through_lead_in(passage, passage.units[candidate.position + 1]).end
            pair = int(contains_answer(text[candidate.unit.start : end], item.answers))
            pair_half = int(covers_half(item, passage.doc_id, candidate.unit.start, end, bool(pair)))
        labels.append(Labels(label, contained, pair, candidate.position, order[passage.id], half, pair_half))
    return matrix, labels, texts


Rows = tuple[npt.NDArray[np.float32], list[Labels], bool, bool, list[tuple[str, str]]]


def corpus_rows(set_name: str, corpus: Corpus, embedder: Embedder) -> list[Rows]:
    """For each question of ``corpus`` (then its near miss, if any): its candidates' features, their
    labels, whether it is unanswerable, whether it is a near miss, and the candidates' texts."""
    index = index_of(set_name, corpus, embedder)
    vectors = embedder.embed_queries([item.question for item in corpus.items])
    every = NEAR_MISS_EVERY.get(set_name, 1)
    out: list[Rows] = []
    for number, (item, vector) in enumerate(zip(corpus.items, vectors, strict=True)):
        hits = retrieve(index, vector, item.question, k=RETRIEVE + NEAR_MISS_EXTRA, mode="hybrid")
        asked = profile(item.question, index.idf, index.idf_ceiling, index.vocabulary)

        matrix, labels, texts = _rows(index, item, asked, vector, hits[:RETRIEVE])
        out.append((matrix, labels, item.unanswerable, False, texts))
        if item.unanswerable or number % every:
            continue
        kept = [h for h in hits if not is_relevant(item, h.passage)][:RETRIEVE]
        renumbered = [dataclasses.replace(h, rank=rank) for rank, h in enumerate(kept)]
        matrix, labels, texts = _rows(index, item, asked, vector, renumbered)
        if not any(x.contained or x.pair_contained for x in labels):
            out.append((matrix, [Labels(0, 0, 0, x.position, x.hit, 0, 0) for x in labels], True, True, texts))
    return out


def build_table(set_name: str, embedder: Embedder) -> tuple[Table, Texts]:
    """The candidate table of one set and what its rows read (indexes from the cache, built when missing)."""
    parts: list[npt.NDArray[np.float32]] = []
    questions: list[int] = []
    labels: list[Labels] = []
    unanswerable: list[int] = []
    near: list[int] = []
    texts = Texts([], [])
    for corpus in corpora(set_name):
        items = iter(corpus.items)
        item = None
        for matrix, found, impossible, near_miss, candidates in corpus_rows(set_name, corpus, embedder):
            if not near_miss:  # a near miss follows its question
                item = next(items)
            assert item is not None
            texts.questions.append(item.question)
            texts.candidates.extend(text for text, _ in candidates)
            texts.headings.extend(headings for _, headings in candidates)
            questions.extend([len(unanswerable)] * len(found))
            parts.append(matrix)
            labels.extend(found)
            unanswerable.append(int(impossible))
            near.append(int(near_miss))
        log(f"{set_name}/{corpus.name}: {len(unanswerable)} questions so far")
    columns = {name: [getattr(x, name) for x in labels] for name in Labels._fields}

    def int8(name: str) -> npt.NDArray[np.int8]:
        return np.asarray(columns[name], dtype=np.int8)

    table = Table(
        set_name,
        np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, len(FEATURES)), np.float32),
        np.asarray(questions, dtype=np.int32),
        int8("label"),
        int8("contained"),
        np.asarray(unanswerable, dtype=np.int8),
        np.asarray(near, dtype=np.int8),
        int8("pair_contained"),
        np.asarray(columns["position"], dtype=np.int16),
        int8("hit"),
        half=int8("half"),
        pair_half=int8("pair_half"),
    )
    return table, texts


def save_texts(name: str, texts: Texts, folder: Path) -> Path:
    """Write a table's texts as JSON (gzip), atomically: they come from the shared sets, so they stay in the
    cache, out of the repository."""
    folder.mkdir(parents=True, exist_ok=True)
    path, tmp = folder / f"{name}.texts.json.gz", folder / f".{name}.texts.tmp"
    tmp.write_bytes(gzip.compress(json.dumps(dataclasses.asdict(texts)).encode(), mtime=0))
    tmp.replace(path)
    return path


def load_texts(name: str, folder: Path) -> Texts:
    """Texts written by ``save_texts``."""
    record = json.loads(gzip.decompress((folder / f"{name}.texts.json.gz").read_bytes()))
    return Texts(list(record["questions"]), list(record["candidates"]), list(record.get("headings", [])))


def kept_scores(table: Table, texts: Texts, folder: Path, texts_folder: Path) -> tuple[Table, Texts]:
    """A rebuilt ``table`` with the cross-encoder scores of the one it replaces in ``folder``, when both read the
    same questions, candidates and headings (the texts in ``texts_folder``): the scores are the fold models'
    reading of those texts, so a rebuild that only adds or relabels columns keeps them, and
    ``python -m fitting.reader`` need not run again."""
    try:
        old, old_texts = load_table(table.name, folder), load_texts(table.name, texts_folder)
    except (FileNotFoundError, ValueError):  # none yet, or written for other features: nothing to keep
        return table, texts
    if old.reader is None or old_texts != texts or len(old.reader) != len(table.label):
        return table, texts
    log(f"{table.name}: the same texts as the table it replaces, so its cross-encoder scores are kept")
    return dataclasses.replace(table, reader=old.reader), texts


def save_table(table: Table, folder: Path = TABLES) -> Path:
    """Write a table (compressed ``.npz`` and the feature names beside it), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table.name}.npz"
    tmp = folder / f".{table.name}.tmp.npz"
    arrays: dict[str, npt.NDArray[Any]] = {
        "features": table.features, "question": table.question, "label": table.label, "contained": table.contained,
        "unanswerable": table.unanswerable, "near_miss": table.near_miss, "pair_contained": table.pair_contained,
        "position": table.position, "hit": table.hit, "names": np.asarray(FEATURES),
    }  # fmt: skip
    optional = {"reader": table.reader, "half": table.half, "pair_half": table.pair_half}
    arrays.update({key: array for key, array in optional.items() if array is not None})
    np.savez_compressed(tmp, allow_pickle=False, **arrays)
    tmp.replace(path)
    return path


def load_table(name: str, folder: Path = TABLES) -> Table:
    """A table written by ``save_table``.

    Raises:
        ValueError: If its features are not ``qa.features.FEATURES`` (rebuild with ``python -m fitting --tables``).
    """
    with np.load(folder / f"{name}.npz", allow_pickle=False) as data:
        if tuple(str(n) for n in data["names"]) != FEATURES:
            raise ValueError(f"{name}: the table's features are not qa.features.FEATURES; rebuild the tables")
        return Table(
            name, data["features"], data["question"], data["label"], data["contained"], data["unanswerable"],
            data["near_miss"], data["pair_contained"], data["position"], data["hit"],
            *(data[key] if key in data else None for key in ("reader", "half", "pair_half")),
        )  # fmt: skip


def reader_sha256(table: Table) -> str | None:
    """The sha256 of a table's cross-encoder scores (None when it has none)."""
    return None if table.reader is None else hashlib.sha256(np.ascontiguousarray(table.reader).tobytes()).hexdigest()


def tables_dir(model: str) -> Path:
    """Where an embedding model's candidate tables live: the default model's in the repository (the shipped
    weights are fitted on them), another's in the cache (``python -m fitting --model M --tables`` builds
    them, to compare the models' left-out figures)."""
    return TABLES if model == DEFAULT_MODEL else CACHE / model / "tables"


def texts_dir(model: str) -> Path:
    """Where the texts of an embedding model's tables are kept: they come from the shared sets, so they stay
    in the cache, out of the repository."""
    return CACHE / model / "texts"


def table_sha256(table: Table) -> str:
    """The sha256 of a table's arrays (not of the zip, whose bytes carry timestamps)."""
    digest = hashlib.sha256()
    arrays = (table.features, table.question, table.label, table.contained, table.unanswerable, table.near_miss,
              table.pair_contained, table.position, table.hit)  # fmt: skip
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(FEATURES).encode())
    return digest.hexdigest()
