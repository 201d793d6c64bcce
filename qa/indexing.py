"""Build or refresh the index of a corpus directory: what `qa index` and `qa serve` run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.build import (
    Progress,
    SegmentPlan,
    build_segment,
    empty_index,
    plan_segment,
    segment_from_vectors,
    settings_fingerprint,
    with_changes,
)
from qa.chunk import chunk_document, unit_texts
from qa.defaults import DEFAULT_MAX_CHARS, DEFAULT_MODEL
from qa.embed import Embedder
from qa.embedders import load_embedder
from qa.errors import CorpusError, IndexFormatError, IndexMissingError
from qa.index import Segment, VectorIndex
from qa.ingest import Problem, load_corpus
from qa.sources import iter_sources, with_sources
from qa.storage import (
    clear_pending,
    load_index,
    load_segment,
    pending_record,
    pending_segments,
    prune_index,
    write_pending,
    write_segment,
    writer_lock,
)
from qa.types import Document, Passage
from qa.writes import commit, merge_plan, migrate_format_1, replace_segments, write_merge

# Passages per segment a `qa index` run writes: its memory is bounded by one segment's vectors,
# and a crash loses at most one segment's work.
SEGMENT_PASSAGES = 20_000


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What an indexing run did.

    Attributes:
        added: Documents indexed (new or changed).
        removed: Documents taken out.
        resumed: Documents an interrupted run had already indexed, taken up instead of indexed again.
        merges: Segment merges at the end of the run.
    """

    skipped: bool
    n_documents: int
    n_passages: int
    seconds: float
    path: Path | None
    problems: list[Problem] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    resumed: int = 0
    segments: int = 0
    merges: int = 0


class Runner(Protocol):
    """Where a build parses, chunks and embeds: ``qa.cluster.RayRunner`` runs them on a Ray cluster.

    Everything else (what to index, the segments' order and contents, writing and committing them)
    stays in ``index_corpus``, so a build on a runner makes the index a local build makes.
    """

    def parse(self, files: list[tuple[str, bytes]]) -> list[Document | Problem]:
        """Each file's document, or why it was refused, in the order given."""
        ...

    def chunk(self, documents: list[Document], max_chars: int) -> dict[str, list[Passage]]:
        """Each document's passages (``qa.chunk.chunk_document``), by document id."""
        ...

    def embed(self, plans: list[SegmentPlan], progress: Progress | None) -> Iterator[np.ndarray]:
        """The vectors of each plan's texts (``SegmentPlan.texts``), a matrix per plan, in plan order."""
        ...


def _current(index_dir: Path, model: str, fingerprint: dict[str, object]) -> VectorIndex | None:
    """The current index if it loads and was built with these settings (changed settings mean a rebuild)."""
    try:
        index = load_index(index_dir, model=model, search=False)
    except (IndexMissingError, IndexFormatError):
        return None
    return index if index.manifest.settings == fingerprint else None


def _resumed(index_dir: Path, model: str, fingerprint: dict[str, object]) -> list[Segment]:
    """The segments an interrupted run with the same settings wrote, verified; none if they do not load."""
    record = pending_record(index_dir)
    if record is None or record.get("model") != model or record.get("settings") != fingerprint:
        return []
    try:
        return [load_segment(index_dir / "segments" / name, sha) for name, sha in pending_segments(index_dir).items()]
    except IndexFormatError:
        return []


def _batches(
    documents: list[Document], max_chars: int, chunked: Mapping[str, list[Passage]] | None = None
) -> tuple[list[list[Document]], int]:
    """Documents in id order, cut into runs of about SEGMENT_PASSAGES passages; and the texts to embed."""
    batches: list[list[Document]] = [[]]
    passages = texts = 0
    for doc in sorted(documents, key=lambda d: d.id):
        chunks = chunked[doc.id] if chunked is not None else chunk_document(doc, max_chars=max_chars)
        if passages and passages + len(chunks) > SEGMENT_PASSAGES:
            batches.append([])
            passages = 0
        batches[-1].append(doc)
        passages += len(chunks)
        texts += len(chunks) + sum(len(unit_texts(p)) for p in chunks)
    return [b for b in batches if b], texts


def tqdm_progress() -> Callable[[int, int], None]:
    """A progress callback that draws a bar on stderr (for the CLI)."""
    from tqdm import tqdm

    bar: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc="embedding", unit="text", file=sys.stderr, mininterval=0.5))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return update


def read_corpus(
    corpus_dir: Path, *, runner: Runner | None = None, log: Callable[[str], None] = lambda message: None
) -> tuple[list[Document], list[Problem]]:
    """The documents of ``corpus_dir`` and the files that could not be read, each logged as skipped.

    ``qa index`` and ``qa eval --corpus`` read a corpus through this, so both report it alike.

    Raises:
        CorpusError: If the directory is missing or holds no readable document.
    """
    documents, problems = load_corpus(corpus_dir, parse=runner.parse if runner is not None else None)
    for problem in problems:
        log(f"skipped {problem.message}")
    if not documents:
        raise CorpusError(f"no readable documents in {corpus_dir} (.txt, .md, .html, .pdf)")
    return documents, problems


def index_corpus(
    corpus_dir: Path,
    index_dir: Path,
    *,
    model: str = DEFAULT_MODEL,
    threads: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    quantize: bool = False,
    force: bool = False,
    embedder: Embedder | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: Callable[[int, int], None] | None = None,
    runner: Runner | None = None,
    read: tuple[list[Document], list[Problem]] | None = None,
) -> IndexReport:
    """Bring the index of ``corpus_dir`` up to date: index what is new or changed, take out what is gone.

    Unchanged documents are not touched. New ones are indexed in segments of about
    ``SEGMENT_PASSAGES`` passages, each written and recorded (``pending.json``) as it is done, so a
    run that is killed loses at most one segment's work: the next run with the same settings takes
    the written segments up. At the end one commit makes everything current, then segments are
    merged under the tiered policy (``qa.writes``). Changed settings (model, passage length, 8-bit
    vectors) or ``force`` index everything again.

    With a ``runner`` (``qa index --ray``), parsing, chunking and embedding run there; the index
    is the one a local build makes (its vectors equal within float rounding).

    Files that cannot be read are logged and left out; the rest is indexed (``read``: what
    ``read_corpus`` returned for ``corpus_dir``, when the caller read it first). Documents written
    through the API (``index_dir/sources``) are part of the index: an upload replaces the corpus
    file of its id or joins the corpus, and a document deleted through the API stays out, so a
    rebuild under a running server keeps exactly the documents it acknowledged.

    Raises:
        CorpusError: If the directory is missing or holds no readable document.
        ModelError: If the model cannot be loaded.
    """
    started = time.perf_counter()
    documents, problems = read or read_corpus(corpus_dir, runner=runner, log=log)
    name = embedder.name if embedder is not None else model
    fingerprint = settings_fingerprint(name, max_chars, quantize)
    with writer_lock(index_dir, on_wait=lambda: log(f"waiting for another qa index on {index_dir} to finish...")):
        if migrate_format_1(index_dir):
            log(f"converted the index in {index_dir} to segments (format 2), its vectors kept")
        documents, kept, dropped = with_sources(documents, iter_sources(index_dir), log=log)
        if kept or dropped:
            log(f"kept {kept} uploaded document(s), left out {dropped} deleted through the API ({index_dir}/sources)")
        wanted = {doc.id: doc for doc in documents}
        base = None if force else _current(index_dir, name, fingerprint)
        if base is not None:
            add = [doc for doc in documents if base.documents.get(doc.id) != doc]
            remove = [doc_id for doc_id in base.documents if doc_id not in wanted]
            if not add and not remove:
                seconds = time.perf_counter() - started
                return IndexReport(True, len(documents), base.n_passages, seconds, None, problems)
        else:
            add, remove = documents, []
        embedder = embedder or load_embedder(model, threads=threads)
        start = base or empty_index(embedder.name, embedder.dim, fingerprint)
        resumed = [] if force else _resumed(index_dir, embedder.name, fingerprint)
        done = {doc_id: doc for segment in resumed for doc_id, doc in segment.documents.items()}
        todo = [doc for doc in add if done.get(doc.id) != doc]
        n_resumed = len(add) - len(todo)
        if n_resumed:
            log(f"taking up {n_resumed} document(s) an interrupted run indexed ({len(resumed)} segment(s))")
        chunked = runner.chunk(todo, max_chars) if runner is not None else None
        batches, texts = _batches(todo, max_chars, chunked)
        segments = list(resumed)
        if runner is None:
            built = _built_here(batches, embedder, max_chars, quantize, base, progress, texts)
        else:
            plans = [
                plan_segment(b, embedder.name, max_chars=max_chars, previous=base, chunks=chunked) for b in batches
            ]
            vectors = runner.embed(plans, progress)
            built = (
                segment_from_vectors(plan, v, embedder.dim, quantize=quantize)
                for plan, v in zip(plans, vectors, strict=True)
            )
        for segment in built:
            write_segment(segment, index_dir)
            segments.append(segment)
            write_pending(index_dir, fingerprint, embedder.name, segments)
        # A resumed segment may hold a document the corpus has changed or dropped since: tombstoned.
        stale = [frozenset(d for d, doc in s.documents.items() if wanted.get(d) != doc) for s in resumed]
        index = with_changes(start, zip(segments, stale + [frozenset()] * len(batches), strict=True), remove)
        del segments, resumed  # the view holds them now: each merge below frees the segments it replaces
        merges = 0
        while names := merge_plan(index):
            merged = write_merge(index_dir, index, names)
            replaced = replace_segments(index, names, merged, index)
            assert replaced is not None, "the merged segments come from this index"
            index, merges = replaced, merges + 1
        commit(index_dir, index)
        clear_pending(index_dir)
        prune_index(index_dir)  # the segments merged away, which the journal named until now
    return IndexReport(
        False, len(documents), index.n_passages, time.perf_counter() - started, index.path, problems,
        added=len(add), removed=len(remove), resumed=n_resumed, segments=len(index.segments), merges=merges,
    )  # fmt: skip


def _built_here(
    batches: list[list[Document]],
    embedder: Embedder,
    max_chars: int,
    quantize: bool,
    base: VectorIndex | None,
    progress: Progress | None,
    texts: int,
) -> Iterator[Segment]:
    """Each batch's segment, chunked and embedded in this process."""
    embedded = 0
    for batch in batches:
        report = None if progress is None else _offset(progress, embedded, texts)
        segment = build_segment(batch, embedder, max_chars=max_chars, quantize=quantize, previous=base, progress=report)
        embedded += len(segment.passages) + segment.n_units
        yield segment


def _offset(progress: Callable[[int, int], None], before: int, total: int) -> Callable[[int, int], None]:
    """Progress of one segment's embedding as progress of the whole run."""
    return lambda done, _: progress(before + done, total)
