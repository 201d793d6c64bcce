"""Build or refresh the index of a corpus directory: what `qa index` and `qa serve` run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.build import build_index, corpus_sha256, settings_fingerprint
from qa.defaults import DEFAULT_MAX_CHARS, DEFAULT_MODEL
from qa.embed import Embedder
from qa.embedders import load_embedder
from qa.errors import CorpusError, IndexFormatError, IndexMissingError
from qa.index import VectorIndex
from qa.ingest import Problem, load_corpus
from qa.sources import iter_sources, with_sources
from qa.storage import current_build, load_index, read_manifest, save_index, verify_build, writer_lock


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What an indexing run did."""

    skipped: bool
    n_documents: int
    n_passages: int
    seconds: float
    path: Path | None
    problems: list[Problem] = field(default_factory=list)


def _up_to_date(index_dir: Path, corpus_hash: str, fingerprint: dict[str, object]) -> int | None:
    """The passage count of the current build if it matches corpus and settings, else None."""
    try:
        build = current_build(index_dir)
        manifest = read_manifest(build)
        verify_build(build, manifest)  # a damaged build is rebuilt, not skipped
    except (IndexMissingError, IndexFormatError):
        return None
    if manifest.corpus_sha256 == corpus_hash and manifest.settings == fingerprint:
        return manifest.n_passages
    return None


def _previous(index_dir: Path, model: str) -> VectorIndex | None:
    try:
        return load_index(index_dir, model=model)
    except (IndexMissingError, IndexFormatError):
        return None


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
) -> IndexReport:
    """Index every supported file in ``corpus_dir`` into ``index_dir``, unless nothing changed.

    Files that cannot be read are logged and left out; the rest is indexed. Documents written
    through the API (``index_dir/sources``) are part of the index: an upload replaces the corpus
    file of its id or joins the corpus, and a document deleted through the API stays out, so a
    rebuild under a running server keeps exactly the documents it acknowledged.

    Raises:
        CorpusError: If the directory is missing or holds no readable document.
        ModelError: If the model cannot be loaded.
    """
    started = time.perf_counter()
    documents, problems = load_corpus(corpus_dir)
    for problem in problems:
        log(f"skipped {problem.message}")
    if not documents:
        raise CorpusError(f"no readable documents in {corpus_dir} (.txt, .md, .html, .pdf)")
    name = embedder.name if embedder is not None else model
    fingerprint = settings_fingerprint(name, max_chars, quantize)
    with writer_lock(index_dir):
        documents, kept, dropped = with_sources(documents, iter_sources(index_dir), log=log)
        if kept or dropped:
            log(f"kept {kept} uploaded document(s), left out {dropped} deleted through the API ({index_dir}/sources)")
        n_passages = None if force else _up_to_date(index_dir, corpus_sha256(documents), fingerprint)
        if n_passages is not None:
            return IndexReport(True, len(documents), n_passages, time.perf_counter() - started, None, problems)
        embedder = embedder or load_embedder(model, threads=threads)
        index = build_index(
            documents,
            embedder,
            max_chars=max_chars,
            quantize=quantize,
            previous=_previous(index_dir, embedder.name),
            progress=progress,
        )
        path = save_index(index, index_dir)
    return IndexReport(False, len(documents), len(index.passages), time.perf_counter() - started, path, problems)
