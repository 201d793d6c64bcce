"""The engine being served, and how it is replaced.

The current ``qa.engine.Engine`` lives at ``app.state.engine`` (None while
the index is missing or damaged; ``Service.unavailable`` says why). It is
never modified: a write builds a new index and a new Engine, and rebinds the
attribute in one assignment. A request grabs the engine once and answers
wholly from it, so every response comes from either the old index or the new.

Ordering: every change happens under ``qa.index.writer_lock`` (one writer per
index directory, across processes), and starts from the newest build on disk,
so a write by another worker (``qa serve --workers N``) is never lost.

Read-your-writes across processes: before answering, every request checks
that ``current`` still points at the build this process serves, and if not,
loads the new build before it answers. A process saves its own build and
swaps it in under ``Service.swap_lock``, and a reload takes the same lock and
looks again, so a request never loads a second time a build its own process
is committing (it waits for the swap), and never skips a build another process
committed, even while this process has a write of its own waiting for the
writer lock. So once a 201 or 204 is sent by any process, the next request to
every process sees it.
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

from qa.build import update_index
from qa.config import Settings
from qa.embed import Embedder
from qa.embedders import load_embedder
from qa.engine import Engine, engine_of
from qa.errors import (
    NO_DOCUMENT,
    DocumentNotFound,
    IndexFormatError,
    IndexMissingError,
    ModelError,
    QAError,
)
from qa.index import VectorIndex
from qa.sources import (
    StoredSource,
    delete_source,
    iter_sources,
    load_source,
    tombstone,
    with_sources,
    write_source,
)
from qa.storage import current_build, load_index, make_current, prune_builds, stage_build, writer_lock
from qa.types import Document

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Service:
    """Everything the routes share besides the engine itself.

    Attributes:
        state: The app's ``app.state``; the engine is ``state.engine``.
        embedder: The loaded model (None until startup, or if it failed to load).
        unavailable: Why there is no engine to serve; empty when there is one.
        write_lock: One write at a time in this process, without holding a thread while waiting.
        reload_lock: One reload of a build another process saved at a time.
        swap_lock: Held while this process saves a build and swaps it in, and while it reloads one.
        served_build: The build directory the engine was loaded from (resolved).
        failed_build: The last build that could not be loaded (not retried until ``current`` moves).
    """

    settings: Settings
    state: Any
    embedder: Embedder | None = None
    unavailable: str = "the service is starting"
    model_load_seconds: float = 0.0
    write_lock: asyncio.Lock | None = None
    reload_lock: asyncio.Lock | None = None
    swap_lock: threading.Lock = field(default_factory=threading.Lock)
    served_build: Path | None = None
    failed_build: Path | None = None

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    @property
    def engine(self) -> Engine | None:
        engine: Engine | None = self.state.engine
        return engine

    def swap(self, engine: Engine) -> None:
        """Serve ``engine`` from now on (callers hold ``swap_lock``).

        An engine built in memory (no path) is taken to match the current build.
        """
        path = engine.index.path
        self.served_build = Path(path).resolve() if path is not None else _current(self)
        self.state.engine = engine
        self.unavailable = ""


def _current(service: Service) -> Path | None:
    """The current build directory (resolved), or None without one."""
    try:
        return current_build(service.index_dir)
    except (IndexMissingError, OSError):
        return None


def _is_served(service: Service, build: Path) -> bool:
    return service.engine is not None and service.served_build == build


def start(service: Service, engine: Engine | None) -> None:
    """Load the model and the index, and re-add stored sources the index lacks.

    A missing or damaged index (or model) is not fatal: the app starts and
    answers 503 with the reason until an index appears.
    """
    if engine is None and service.embedder is None:
        started = time.perf_counter()
        try:
            service.embedder = load_embedder(service.settings.model, threads=service.settings.threads)
        except QAError as exc:
            service.unavailable = public_reason(exc)
            logger.error("cannot load the model: %s", exc)
            return
        service.model_load_seconds = time.perf_counter() - started
    if engine is None:
        assert service.embedder is not None
        try:
            index = load_index(service.index_dir, model=service.embedder.name)
            engine = engine_of(index, service.embedder, service.settings)  # loads the cross-encoder too
        except (QAError, OSError) as exc:  # OSError: an unreadable file (permissions, I/O error)
            service.unavailable = public_reason(exc)
            logger.error("not ready: %s", exc)
            return
    service.embedder = engine.embedder
    with service.swap_lock:
        service.swap(engine)
    _recover_logged(service)


def public_reason(exc: BaseException) -> str:
    """Why the service cannot answer, for anyone to read: no path, no file name, no internals.

    The full error goes to the server log.
    """
    if isinstance(exc, IndexMissingError):
        return "no index has been built yet: build one with `qa index` (details in the server log)"
    if isinstance(exc, IndexFormatError):
        return "the index is damaged or was built with another version or model: rebuild it with `qa index`"
    if isinstance(exc, ModelError):
        return "the embedding model cannot be loaded (details in the server log)"
    return "the index cannot be read (details in the server log)"


def _recover_logged(service: Service) -> None:
    try:
        recover_sources(service)
    except (QAError, OSError) as exc:
        logger.error("could not re-add stored sources: %s", exc)


def _latest_index(service: Service, engine: Engine) -> VectorIndex:
    """The index a change starts from: the newest build on disk (caller holds writer_lock).

    The served engine is read under ``swap_lock`` at the moment ``current`` is compared with the served
    build, not taken from ``engine``: a request may have swapped in another process's build since the
    caller read ``service.engine``, and building on the older index would undo that process's write.
    """
    with service.swap_lock:
        build = _current(service)
        served = service.engine
        if served is not None and (build is None or _is_served(service, build)):
            return served.index
    return load_index(service.index_dir, model=engine.embedder.name)


def _commit(service: Service, engine: Engine, new_index: VectorIndex) -> Engine:
    """Save ``new_index`` and serve it (caller holds writer_lock).

    The build is written before ``current`` moves; moving it and swapping the engine happen under
    ``swap_lock``, so a request that sees the new ``current`` before the swap waits the moment it takes
    in ``_reload`` instead of loading this build a second time.
    """
    new_engine = engine.with_index(new_index)
    build = stage_build(new_index, service.index_dir)
    with service.swap_lock:
        make_current(service.index_dir, build)
        service.swap(new_engine)
    prune_builds(service.index_dir, keep=build)
    return new_engine


def _out_of_date(index: VectorIndex, stored: list[StoredSource]) -> tuple[list[Document], list[str]]:
    """The stored uploads ``index`` lacks (or holds in another version), and the deleted ids it still holds.

    The records apply as ``qa index`` applies them (``qa.sources.with_sources``); this is the difference.
    """
    merged = {doc.id: doc for doc in with_sources(index.documents.values(), stored)[0]}
    add = [
        doc
        for doc in merged.values()
        if (indexed := index.documents.get(doc.id)) is None or (indexed.text, indexed.title) != (doc.text, doc.title)
    ]
    return add, [doc_id for doc_id in index.documents if doc_id not in merged]


def recover_sources(service: Service) -> None:
    """Bring the index in line with the stored records: a crash after a 201 or a 204 loses nothing."""
    engine = service.engine
    if engine is None:
        return
    stored = list(iter_sources(service.index_dir))
    if not stored:
        return
    with writer_lock(service.index_dir):
        engine = _require_engine(service)
        base = _latest_index(service, engine)
        add, remove = _out_of_date(base, stored)
        if add or remove:
            logger.warning("re-applying %d stored upload(s) and %d deletion(s) the index lacks", len(add), len(remove))
            _commit(service, engine, update_index(base, engine.embedder, add=add, remove=remove))


def add_document(service: Service, doc: Document, source: StoredSource) -> int:
    """Store a document's source durably, index it, and serve the new index.

    Returns:
        The document's passage count in the new index.
    """
    with writer_lock(service.index_dir):
        engine = _require_engine(service)
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
    with writer_lock(service.index_dir):
        engine = _require_engine(service)
        base = _latest_index(service, engine)
        if document_id not in base.documents:
            raise DocumentNotFound(NO_DOCUMENT)
        # The tombstone first: it replaces the upload, if any, and keeps a corpus file of the same id
        # out of later builds (`qa index`). A crash after it removes the document at the next start.
        previous = load_source(service.index_dir, document_id)
        write_source(service.index_dir, tombstone(document_id))
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
    """Serve the current build, unless it is already served.

    Under ``swap_lock``, so it waits for a build this process is committing (and then has nothing
    to do) and never swaps in a build older than the one served.
    """
    embedder = service.embedder
    if embedder is None:
        return
    with service.swap_lock:
        build = _current(service)
        if build is None or build == service.failed_build or _is_served(service, build):
            return
        previous = service.engine
        try:
            index = load_index(service.index_dir, model=embedder.name)
            engine = (
                previous.with_index(index) if previous is not None else engine_of(index, embedder, service.settings)
            )
        except (QAError, OSError) as exc:
            service.failed_build = build  # do not verify a broken build again on every request
            logger.warning("keeping the served index; cannot load the current build: %s", exc)
            if previous is None:
                service.unavailable = public_reason(exc)
            return
        service.swap(engine)
        logger.info("now serving %s", service.served_build)
    if previous is None:
        _recover_logged(service)


async def refresh_if_stale(service: Service) -> None:
    """Load the current build first if another process (a worker, `qa index`) swapped one in.

    Checked on every request (a readlink and a few stats), and the request waits for the
    load: a document added or deleted through one worker is seen by every worker once its
    201 or 204 is sent, also while this worker has a write of its own in progress.
    """
    if service.embedder is None or service.reload_lock is None:
        return
    build = _current(service)
    if build is None or build == service.failed_build or _is_served(service, build):
        return
    async with service.reload_lock:
        await anyio.to_thread.run_sync(_reload, service, abandon_on_cancel=True)
