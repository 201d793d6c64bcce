"""The engine being served, and how it is replaced.

The current ``qa.engine.Engine`` lives at ``app.state.engine`` (None while
the index is missing or damaged; ``Service.unavailable`` says why). It is
never modified: a write builds a new index and a new Engine, and rebinds the
attribute in one assignment. A request grabs the engine once and answers
wholly from it, so every response comes from either the old index or the new.

Ordering: every change happens under ``qa.index.writer_lock`` (one writer per
index directory, across processes), and starts from the newest build on disk,
so a write by another worker (``qa serve --workers N``) is never lost. Each
worker also notices, at most once per ``RECHECK_SECONDS``, that ``current``
points at a build other than the one it serves, and reloads it in the background.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from api.sources import StoredSource, delete_source, iter_sources, load_source, write_source
from qa.config import Settings
from qa.embed import Embedder, SentenceTransformerEmbedder
from qa.engine import Engine, update_index
from qa.errors import CorpusError, DocumentNotFound, IndexMissingError, QAError
from qa.index import VectorIndex, current_build, load_index, save_index, writer_lock
from qa.ingest import parse_document
from qa.types import Document

logger = logging.getLogger(__name__)

# How often a worker checks whether another process has swapped in a newer build.
RECHECK_SECONDS = 1.0


@dataclass(eq=False)
class Service:
    """Everything the routes share besides the engine itself.

    Attributes:
        state: The app's ``app.state``; the engine is ``state.engine``.
        embedder: The loaded model (None until startup, or if it failed to load).
        unavailable: Why there is no engine to serve; empty when there is one.
        write_lock: One write at a time in this process, without holding a thread while waiting.
    """

    settings: Settings
    state: Any
    embedder: Embedder | None = None
    unavailable: str = "the service is starting"
    model_load_seconds: float = 0.0
    write_lock: asyncio.Lock | None = None
    swap_lock: threading.Lock = field(default_factory=threading.Lock)
    last_check: float = 0.0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    @property
    def engine(self) -> Engine | None:
        engine: Engine | None = self.state.engine
        return engine

    def swap(self, engine: Engine) -> None:
        """Serve ``engine`` from now on (callers hold ``swap_lock``)."""
        self.state.engine = engine
        self.unavailable = ""


def _same_build(index: VectorIndex, build: Path) -> bool:
    return index.path is not None and Path(index.path).resolve() == build.resolve()


def start(service: Service, engine: Engine | None) -> None:
    """Load the model and the index, and re-add stored sources the index lacks.

    A missing or damaged index (or model) is not fatal: the app starts and
    answers 503 with the reason until an index appears.
    """
    if engine is None and service.embedder is None:
        started = time.perf_counter()
        try:
            service.embedder = SentenceTransformerEmbedder(service.settings.model, threads=service.settings.threads)
        except QAError as exc:
            service.unavailable = str(exc)
            logger.error("cannot load the model: %s", exc)
            return
        service.model_load_seconds = time.perf_counter() - started
    if engine is None:
        assert service.embedder is not None
        try:
            index = load_index(service.index_dir, model=service.embedder.name)
        except QAError as exc:
            service.unavailable = str(exc)
            logger.error("not ready: %s", exc)
            return
        engine = Engine(index, service.embedder, min_score=service.settings.min_score)
    service.embedder = engine.embedder
    with service.swap_lock:
        service.swap(engine)
    _recover_logged(service)


def _recover_logged(service: Service) -> None:
    try:
        recover_sources(service)
    except (QAError, OSError) as exc:
        logger.error("could not re-add stored sources: %s", exc)


def _latest_index(service: Service, engine: Engine) -> VectorIndex:
    """The index a change starts from: the newest build on disk (caller holds writer_lock)."""
    try:
        build = current_build(service.index_dir)
    except IndexMissingError:
        return engine.index
    if _same_build(engine.index, build):
        return engine.index
    return load_index(service.index_dir, model=engine.embedder.name)


def _commit(service: Service, engine: Engine, new_index: VectorIndex) -> Engine:
    """Save ``new_index`` and serve it (caller holds writer_lock)."""
    save_index(new_index, service.index_dir)
    new_engine = Engine(new_index, engine.embedder, min_score=engine.min_score)
    with service.swap_lock:
        service.swap(new_engine)
    return new_engine


def _stale_sources(index: VectorIndex, stored: list[StoredSource]) -> list[Document]:
    documents = []
    for source in stored:
        try:
            doc = parse_document(source.document_id, source.data, title=source.title)
        except CorpusError as exc:
            logger.warning("stored source %r cannot be indexed: %s", source.document_id, exc)
            continue
        indexed = index.documents.get(doc.id)
        if indexed is None or (indexed.text, indexed.title) != (doc.text, doc.title):
            documents.append(doc)
    return documents


def recover_sources(service: Service) -> None:
    """Index every stored upload that the served index lacks (a crash after a 201 loses nothing)."""
    engine = service.engine
    if engine is None:
        return
    stored = list(iter_sources(service.index_dir))
    if not stored:
        return
    with writer_lock(service.index_dir):
        base = _latest_index(service, engine)
        missing = _stale_sources(base, stored)
        if missing:
            logger.warning("re-adding %d stored document(s) missing from the index", len(missing))
            _commit(service, engine, update_index(base, engine.embedder, add=missing))


def add_document(service: Service, doc: Document, source: StoredSource) -> int:
    """Store a document's source durably, index it, and serve the new index.

    Returns:
        The document's passage count in the new index.
    """
    engine = _require_engine(service)
    with writer_lock(service.index_dir):
        previous = load_source(service.index_dir, doc.id)
        write_source(service.index_dir, source)
        try:
            base = _latest_index(service, engine)
            new_index = update_index(base, engine.embedder, add=[doc])
            _commit(service, engine, new_index)
        except BaseException:
            _restore(service.index_dir, doc.id, previous)
            raise
    return sum(1 for p in new_index.passages if p.doc_id == doc.id)


def remove_document(service: Service, document_id: str) -> None:
    """Delete a document from the index and its stored source.

    Raises:
        DocumentNotFound: If the newest index does not hold it.
    """
    engine = _require_engine(service)
    with writer_lock(service.index_dir):
        base = _latest_index(service, engine)
        if document_id not in base.documents:
            raise DocumentNotFound(f"no document {document_id!r} in the index")
        # Source first: a crash after this leaves the document indexed (the 204 was not
        # sent) instead of resurrecting it from its source at the next start.
        previous = load_source(service.index_dir, document_id)
        delete_source(service.index_dir, document_id)
        try:
            _commit(service, engine, update_index(base, engine.embedder, remove=[document_id]))
        except BaseException:
            _restore(service.index_dir, document_id, previous)
            raise


def _restore(index_dir: Path, document_id: str, previous: StoredSource | None) -> None:
    if previous is None:
        delete_source(index_dir, document_id)
    else:
        write_source(index_dir, previous)


def _require_engine(service: Service) -> Engine:
    engine = service.engine
    if engine is None:
        raise IndexMissingError(service.unavailable or "no index is loaded")
    return engine


def _reload(service: Service) -> None:
    """Serve the current build from disk, unless a newer one was swapped in meanwhile."""
    embedder = service.embedder
    if embedder is None:
        return
    try:
        index = load_index(service.index_dir, model=embedder.name)
    except QAError as exc:
        logger.warning("keeping the served index; cannot load the current build: %s", exc)
        if service.engine is None:
            service.unavailable = str(exc)
        return
    previous = service.engine
    min_score = previous.min_score if previous is not None else service.settings.min_score
    with service.swap_lock:
        if _needs_reload(service) and _same_build(index, current_build(service.index_dir)):
            service.swap(Engine(index, embedder, min_score=min_score))
            logger.info("now serving %s", index.path)
    if previous is None:
        _recover_logged(service)


def _needs_reload(service: Service) -> bool:
    try:
        build = current_build(service.index_dir)
    except (IndexMissingError, OSError):
        return False
    engine = service.engine
    return engine is None or not _same_build(engine.index, build)


async def refresh_if_stale(service: Service) -> None:
    """Start a background reload if another process moved ``current`` (checked once a second).

    The check is a readlink and a stat, cheap enough for the event loop.
    """
    now = time.monotonic()
    if service.tasks or service.embedder is None or now - service.last_check < RECHECK_SECONDS:
        return
    service.last_check = now
    if not _needs_reload(service):
        return
    if service.engine is None:  # nothing to serve meanwhile: wait for it
        await anyio.to_thread.run_sync(_reload, service, abandon_on_cancel=True)
        return
    task = asyncio.create_task(asyncio.to_thread(_reload, service))
    service.tasks.add(task)
    task.add_done_callback(service.tasks.discard)
