"""Indexes for the benchmarks: real text where it exists, seeded synthetic rows beyond it.

* ``base_index``: the first US Code files in ``shared/datasets/uscode`` (about 10.5k passages)
  or, without them, the default corpus, built once with the real model through
  ``qa.indexing.index_corpus`` and kept in the cache directory.
* ``sub_index``: the first ``n`` passages of a real index, with their real vectors:
  the 1k and 10k rows, without embedding anything again.
* ``synthetic_index``: ``n`` rows for 100k and 1M passages. Row ``r`` reuses the
  text and units of a real passage; its vector mixes two real passage vectors
  and moves along the directions real vectors vary in (random unit vectors have
  no neighbours, so they would measure nothing an approximate index meets in use); its BM25 tokens are the real
  passage's with 30% resampled from the corpus's word frequencies and 1% drawn
  from a pool of rare words, so postings and vocabulary grow as a real corpus's do.
  Vectors live in ``.npy`` files opened memory-mapped, as ``qa.index.load_index`` opens them.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import CACHE, CORPUS, USCODE, cached_folder, log
from qa.chunk import retrieval_text
from qa.embed import Embedder
from qa.errors import CorpusError
from qa.files import sha256_file
from qa.index import (
    FLAT_TYPE,
    Postings,
    Segment,
    VectorIndex,
    flat_dense,
    make_dense,
    manifest_of,
    new_segment_name,
    unit_offsets_of,
    view_of,
)
from qa.storage import load_index
from qa.tokens import tokenize
from qa.types import Document, Passage, Span

SEED = 20261125
# Share of a synthetic row's tokens resampled from the corpus's word frequencies.
RESAMPLE = 0.30
# Share replaced by one of RARE_WORDS rare words: a 1M-row vocabulary of about 100k, as Heaps' law predicts.
RARE = 0.01
RARE_WORDS = 150_000
# Noise added to the mix of two real vectors: NOISE times the real vectors' own spread along
# their NOISE_RANK main directions (isotropic noise would make the set look like random vectors).
NOISE = 0.5
NOISE_RANK = 64
# Bumped when the generator changes: cached vectors and graphs of another version are not reused.
GENERATOR_VERSION = 2
CHUNK_ROWS = 50_000
# Real passages embedded for the base index: past 10k, so the 10k row is real text.
BASE_PASSAGES = 10_500


def base_index(
    embedder: Embedder, *, max_passages: int = BASE_PASSAGES, smoke: bool = False
) -> tuple[VectorIndex, str]:
    """The real index and its name: the first US Code files up to ``max_passages``, else the default corpus."""
    from qa.indexing import index_corpus

    if smoke or not USCODE.is_dir():
        if not smoke:
            log(f"{USCODE} is absent: real-text rows use the default corpus only")
        source, name = CORPUS, "corpus"
    else:
        source, name = _uscode_sample(max_passages), "uscode"
    index_dir = CACHE / f"base-{name}-{max_passages}-{embedder.name}"
    report = index_corpus(source, index_dir, embedder=embedder, log=log)
    log(f"base index {name}: {report.n_passages} passages ({'cached' if report.skipped else 'built'})")
    return load_index(index_dir, model=embedder.name), name


def _uscode_sample(max_passages: int) -> Path:
    """A folder holding the first US Code files (by path) whose passages add up to ``max_passages``."""
    from qa.chunk import chunk_document
    from qa.ingest import parse_document

    def fill(tmp: Path) -> None:
        total = 0
        for path in sorted(USCODE.rglob("*.md")):
            if total >= max_passages:
                break
            name = path.relative_to(USCODE).as_posix().replace("/", "-")
            try:
                total += len(chunk_document(parse_document(name, path.read_bytes())))
            except CorpusError:  # an empty file: left out, as `qa index` leaves it out
                continue
            shutil.copy(path, tmp / name)

    return cached_folder(f"uscode-sample-{max_passages}", fill)


def only_segment(index: VectorIndex) -> Segment:
    """The one segment of an index built in one run (the base indexes are below a segment's size)."""
    (segment,) = index.segments
    return segment


def single_segment_index(
    base: VectorIndex,
    passages: list[Passage],
    passage_vectors: np.ndarray,
    unit_vectors: np.ndarray,
    token_lists: list[list[str]],
    dense: Any,
    documents: dict[str, Document] | None = None,
) -> VectorIndex:
    """An index of one segment over the given rows, with ``base``'s model and settings (and documents)."""
    known = documents if documents is not None else base.documents
    segment = Segment(
        new_segment_name(), {p.doc_id: known[p.doc_id] for p in passages}, passages, passage_vectors,
        unit_vectors, unit_offsets_of(passages), dense, Postings.of(token_lists), type(dense).__name__,
    )  # fmt: skip
    m = base.manifest
    return view_of(manifest_of(m.model, m.dim, m.settings, [segment], [frozenset()]), [segment])


def sub_index(base: VectorIndex, n: int) -> VectorIndex:
    """The first ``n`` passages of ``base`` with their vectors, indexed anew (dense and lexical)."""
    segment = only_segment(base)
    n = min(n, len(segment.passages))
    passages = segment.passages[:n]
    passage_vectors = np.ascontiguousarray(segment.passage_vectors[:n])
    unit_vectors = np.ascontiguousarray(segment.unit_vectors[: int(segment.unit_offsets[n])])
    tokens = [tokenize(retrieval_text(p)) for p in passages]
    return single_segment_index(base, passages, passage_vectors, unit_vectors, tokens, make_dense(passage_vectors))


def _variation(base: np.ndarray) -> np.ndarray:
    """The NOISE_RANK main directions in which real vectors vary, each scaled by its spread (PCA)."""
    centred = base - base.mean(axis=0)
    _, spread, directions = np.linalg.svd(centred, full_matrices=False)
    basis: np.ndarray = (spread[:NOISE_RANK, None] / np.sqrt(len(base))) * directions[:NOISE_RANK]
    return basis.astype(np.float32)


def _mixed_vectors(base: np.ndarray, basis: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors mixing each row's real vector with another real vector, moved along the real variation."""
    other = rng.integers(0, len(base), len(rows))
    weight = rng.uniform(0.5, 1.0, (len(rows), 1)).astype(np.float32)
    noise = NOISE * rng.standard_normal((len(rows), len(basis)), dtype=np.float32) @ basis
    mixed = weight * base[rows] + (1 - weight) * base[other] + noise
    unit: np.ndarray = (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _write_vectors(path: Path, n: int, source: np.ndarray, pick: np.ndarray, mix: bool) -> np.ndarray:
    """Row ``r`` of a memory-mapped ``.npy`` is ``source[pick[r]]``, mixed when ``mix``; cached by path."""
    if path.is_file():
        return _open(path)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(pick), source.shape[1]))
    rng = np.random.default_rng(SEED + len(pick))
    basis = _variation(source) if mix else source[:0]
    for lo in range(0, len(pick), CHUNK_ROWS):
        rows = pick[lo : lo + CHUNK_ROWS]
        out[lo : lo + len(rows)] = _mixed_vectors(source, basis, rows, rng) if mix else source[rows]
    # The first n_base rows stay real, so gold questions still find their passages.
    if mix:
        out[:n] = source[:n]
    out.flush()
    del out
    tmp.rename(path)
    return _open(path)


def _open(path: Path) -> np.ndarray:
    """The vectors memory-mapped, after reading the file once through: loading an index hashes every file
    before parsing it (``qa.storage.verify_segment``), which leaves the vectors in the page cache, so the
    synthetic rows are timed as a loaded index is, not with the first read of each page from disk."""
    sha256_file(path)
    vectors: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    return vectors


def _token_lists(base: VectorIndex, pick: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    """BM25 tokens of each synthetic row: its real passage's, partly resampled (see the module docstring)."""
    real = [tokenize(retrieval_text(p)) for p in base.passages]
    vocab = sorted({t for tokens in real for t in tokens})
    code = {t: i for i, t in enumerate(vocab)}
    counts = np.bincount([code[t] for tokens in real for t in tokens], minlength=len(vocab)).astype(np.float64)
    words = np.array(vocab + [f"zz{i:x}" for i in range(RARE_WORDS)], dtype=object)
    lengths = np.array([len(real[b]) for b in pick])
    flat = np.concatenate([np.array([code[t] for t in real[b]], dtype=np.int64) for b in range(len(real))])
    starts = np.concatenate([[0], np.cumsum([len(t) for t in real])])
    ids = np.concatenate([flat[starts[b] : starts[b + 1]] for b in pick]) if len(pick) else np.zeros(0, np.int64)
    draw = rng.random(len(ids))
    resample = draw < RESAMPLE
    ids[resample] = rng.choice(len(vocab), int(resample.sum()), p=counts / counts.sum())
    rare = draw > 1 - RARE
    ids[rare] = len(vocab) + rng.integers(0, RARE_WORDS, int(rare.sum()))
    tokens = words[ids].tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [tokens[bounds[i] : bounds[i + 1]] for i in range(len(pick))]


def cached_dense(vectors: np.ndarray, folder: Path) -> Any:
    """``qa.index.make_dense`` over the vectors, kept on disk under a name holding the index constants."""
    import faiss

    import qa.index as constants

    kind = (
        "flat"
        if len(vectors) <= constants.FLAT_MAX_PASSAGES
        else f"hnsw{constants.HNSW_M}-{constants.HNSW_EF_CONSTRUCTION}"
    )
    path = folder / f"dense-{kind}.faiss"
    if path.is_file():
        dense = faiss.read_index(str(path))
    else:
        log(f"building the {kind} index over {len(vectors)} vectors (cached in {path})")
        dense = make_dense(vectors)
        faiss.write_index(dense, str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").rename(path)
    if hasattr(dense, "hnsw"):
        dense.hnsw.efSearch = constants.HNSW_EF_SEARCH
    return dense


def _synthetic_rows(base: VectorIndex, n: int) -> tuple[list[int], np.ndarray, np.ndarray, list[list[str]], Path]:
    """Which real passage each of ``n`` rows copies, their vectors and unit vectors (memory-mapped) and tokens."""
    segment = only_segment(base)
    n_base = len(segment.passages)
    rng = np.random.default_rng(SEED + n)
    pick = np.concatenate([np.arange(min(n, n_base)), rng.integers(0, n_base, max(0, n - n_base))])
    folder = CACHE / f"synthetic-v{GENERATOR_VERSION}-{base.manifest.model}-{n_base}-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    passage_vectors = _write_vectors(
        folder / "passage_vectors.npy", n_base, np.asarray(segment.passage_vectors), pick, True
    )
    offsets = segment.unit_offsets
    unit_rows = np.concatenate([np.arange(offsets[b], offsets[b + 1]) for b in pick]).astype(np.int64)
    unit_vectors = _write_vectors(folder / "unit_vectors.npy", 0, np.asarray(segment.unit_vectors), unit_rows, False)
    log(f"synthetic {n}: tokens for BM25")
    return pick.tolist(), passage_vectors, unit_vectors, _token_lists(base, pick, rng), folder


def synthetic_index(base: VectorIndex, n: int) -> VectorIndex:
    """``n`` passages in one segment: the real ones first, then synthetic rows (see the module docstring)."""
    segment = only_segment(base)
    n_base = len(segment.passages)
    pick, passage_vectors, unit_vectors, tokens, folder = _synthetic_rows(base, n)
    # A synthetic row is a document of its own (its real passage's document under another id), so each
    # document's passages stay consecutive rows, as in any segment.
    documents = dict(base.documents)
    passages = segment.passages[: min(n, n_base)]
    for r, b in enumerate(pick[n_base:], start=n_base):
        real = segment.passages[b]
        documents[f"synthetic-{r}"] = dataclasses.replace(base.documents[real.doc_id], id=f"synthetic-{r}")
        passages.append(dataclasses.replace(real, id=f"synthetic-{r}", doc_id=f"synthetic-{r}"))
    dense = cached_dense(passage_vectors, folder)
    return single_segment_index(base, passages, passage_vectors, unit_vectors, tokens, dense, documents)


def excerpt(doc: Document, passage: Passage, new_id: str) -> tuple[Document, Passage]:
    """A document holding only ``passage``'s text (its blocks cut to it), and the passage moved into it."""
    lo, hi = passage.start, passage.end
    blocks = tuple(
        dataclasses.replace(b, start=max(b.start, lo) - lo, end=min(b.end, hi) - lo)
        for b in doc.blocks
        if b.start < hi and b.end > lo
    )
    document = dataclasses.replace(doc, id=new_id, text=doc.text[lo:hi], blocks=blocks)
    units = tuple(Span(u.start - lo, u.end - lo) for u in passage.units)
    return document, dataclasses.replace(passage, id=new_id, doc_id=new_id, start=0, end=hi - lo, units=units)


def synthetic_segments(base: VectorIndex, n: int, per_segment: int) -> VectorIndex:
    """The rows of ``synthetic_index`` in flat segments of at most ``per_segment`` rows (the real ones in the
    first), as ``qa index`` leaves a large corpus; each synthetic row is an excerpt document, so the index
    stores each text once (1M copies of whole US Code sections would not fit on disk)."""
    real = only_segment(base)
    n_base = len(real.passages)
    assert per_segment >= n_base, "the real rows share documents: they must stay in one segment"
    pick, passage_vectors, unit_vectors, tokens, _ = _synthetic_rows(base, n)
    passages = real.passages[: min(n, n_base)]
    documents = {p.doc_id: base.documents[p.doc_id] for p in passages}
    for r, b in enumerate(pick[n_base:], start=n_base):
        document, passage = excerpt(base.documents[real.passages[b].doc_id], real.passages[b], f"synthetic-{r}")
        documents[document.id] = document
        passages.append(passage)
    segments, unit_start = [], 0
    for lo in range(0, n, per_segment):
        rows = passages[lo : lo + per_segment]
        offsets = unit_offsets_of(rows)
        vectors = np.ascontiguousarray(passage_vectors[lo : lo + len(rows)])
        units = np.ascontiguousarray(unit_vectors[unit_start : unit_start + int(offsets[-1])])
        unit_start += int(offsets[-1])
        segments.append(
            Segment(
                new_segment_name(),
                {p.doc_id: documents[p.doc_id] for p in rows},
                rows,
                vectors,
                units,
                offsets,
                flat_dense(vectors),
                Postings.of(tokens[lo : lo + len(rows)]),
                FLAT_TYPE,
            )  # fmt: skip
        )
    m = base.manifest
    return view_of(manifest_of(m.model, m.dim, m.settings, segments, [frozenset()] * len(segments)), segments)


def main() -> None:
    """Build the cached indexes ahead of a latency run: ``python -m benchmarks.corpora 100000 1000000``."""
    import sys

    from benchmarks.common import offline
    from qa.defaults import DEFAULT_MODEL
    from qa.embedders import load_embedder

    offline()
    args = sys.argv[1:]
    model = args.pop(0) if args and not args[0].isdigit() else DEFAULT_MODEL
    base, _ = base_index(load_embedder(model, threads=1))
    for n in map(int, args):
        index = synthetic_index(base, n)
        log(f"synthetic {n}: ready ({only_segment(index).faiss})")


if __name__ == "__main__":
    main()
