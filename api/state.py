"""The engine being served, and how it is replaced.

The current ``qa.engine.Engine`` lives at ``app.state.engine`` (None while
the index is missing or damaged; ``Service.unavailable`` says why). It is
never modified: a write commits a new segment (``qa.writes``) and makes a new
Engine over the new commit, which reuses every segment already loaded, and
rebinds the attribute in one assignment. A request grabs the engine once and
answers wholly from it, so every response comes from either the old commit or
the new.

Ordering: every change happens under ``qa.storage.writer_lock`` (one writer per
index directory, across processes), and starts from the newest commit on disk,
so a write by another worker (``qa serve --workers N``) is never lost.

Read-your-writes across processes: before answering, every request checks
that ``current`` still points at the commit this process serves, and if not,
loads the new commit (only its new segments) before it answers. A process
makes its own commit current and swaps it in under ``Service.swap_lock``, and a
reload takes the same lock and looks again, so a request never loads a second
time a commit its own process is making current (it waits for the swap), and
never skips a commit another process made, even while this process has a write
of its own waiting for the writer lock. So once a 201 or 204 is sent by any
process, the next request to every process sees it.

Merges run in a background thread after a write when the policy asks for one
(``qa.writes.merge_plan``); they publish through the same swap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from qa import writes
from qa.collections import DEFAULT, Collection
from qa.config import Settings
from qa.embed import Embedder
from qa.embedders import load_embedder
from qa.engine import Engine, engine_of
from qa.errors import (
    IndexFormatError,
    IndexMissingError,
    ModelError,
    QAError,
)
from qa.index import VectorIndex
from qa.retrieve import LOCAL, Searcher
from qa.sources import StoredSource
from qa.storage import current_commit, load_index, make_current
from qa.types import Document
from qa.writes import Publish

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Service:
    """Everything the routes share besides the engine itself.

    Attributes:
        state: The app's ``app.state``; the engine is ``state.engine``.
        embedder: The loaded model (None until startup, or if it failed to load).
        unavailable: Why there is no engine to serve; empty when there is one.
        write_lock: One write at a time in this process, without holding a thread while waiting.
        reload_lock: One reload of a commit another process made at a time.
        swap_lock: Held while this process makes a commit current and swaps it in, and while it reloads one.
        served_commit: The commit file the engine was loaded from (resolved).
        failed_commit: The last commit that could not be loaded (not retried until ``current`` moves).
        merging: Held while this process runs merges in the background.
        searcher: Where retrieval's first stage runs (``qa serve --ray``: on the shards, so this process
            never makes a segment's FAISS index).
        collection: The collection served (``qa.collections``): its name and read rule.
        current_stamp: Device, inode and change time of the ``current`` link when ``current_seen`` was
            resolved (``_current_now``).
    """

    settings: Settings
    state: Any
    embedder: Embedder | None = None
    unavailable: str = "the service is starting"
    model_load_seconds: float = 0.0
    write_lock: asyncio.Lock | None = None
    reload_lock: asyncio.Lock | None = None
    swap_lock: threading.Lock = field(default_factory=threading.Lock)
    served_commit: Path | None = None
    failed_commit: Path | None = None
    merging: threading.Lock = field(default_factory=threading.Lock)
    searcher: Searcher = LOCAL
    collection: Collection = field(default_factory=lambda: Collection(DEFAULT))
    current_stamp: tuple[int, int, int] | None = None
    current_seen: Path | None = None

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    @property
    def searches_here(self) -> bool:
        """Whether this process searches the segments itself (and so makes their FAISS indexes)."""
        return self.searcher is LOCAL

    @property
    def engine(self) -> Engine | None:
        engine: Engine | None = self.state.engine
        return engine

    def swap(self, engine: Engine) -> None:
        """Serve ``engine`` from now on (callers hold ``swap_lock``).

        An engine built in memory (no path) is taken to match the current commit.
        """
        path = engine.index.path
        self.served_commit = Path(path).resolve() if path is not None else _current(self)
        self.state.engine = engine
        self.unavailable = ""


def _current(service: Service) -> Path | None:
    """The current commit file (resolved), or None without one."""
    try:
        return current_commit(service.index_dir)
    except (IndexMissingError, IndexFormatError, OSError):
        return None


def _current_now(service: Service) -> Path | None:
    """``_current``, resolved again only when the ``current`` link was replaced since the last call: a commit
    renames a new link over it (a new inode), so a request pays one ``lstat`` instead of resolving every
    component of the index's path (about 0.1 ms a request)."""
    try:
        status = os.lstat(service.index_dir / "current")
    except OSError:
        return _current(service)
    stamp = (status.st_dev, status.st_ino, status.st_ctime_ns)
    if stamp != service.current_stamp or service.current_seen is None:
        # Nothing is remembered while the link leads nowhere: its commit may yet appear under the same link.
        service.current_seen = _current(service)
        service.current_stamp = stamp if service.current_seen is not None else None
    return service.current_seen


def _is_served(service: Service, commit: Path) -> bool:
    return service.engine is not None and service.served_commit == commit


def start(service: Service, engine: Engine | None) -> None:
    """Load the model and the index, re-add stored sources the index lacks, and merge what the policy asks for.

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
            index = load_index(service.index_dir, model=service.embedder.name, search=service.searches_here)
            # loads the cross-encoder too
            engine = engine_of(index, service.embedder, service.settings, service.searcher)
        except (QAError, OSError) as exc:  # OSError: an unreadable file (permissions, I/O error)
            service.unavailable = public_reason(exc)
            logger.error("not ready: %s", exc)
            return
    service.embedder = engine.embedder
    with service.swap_lock:
        service.swap(engine)
    _recover_logged(service)
    schedule_merge(service)  # segments a crash or an earlier server left for merging


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
    """The index a change starts from: the newest commit on disk (caller holds writer_lock).

    The served engine is read under ``swap_lock`` at the moment ``current`` is compared with the served
    commit, not taken from ``engine``: a request may have swapped in another process's commit since the
    caller read ``service.engine``, and building on the older index would undo that process's write. The
    segments the served index holds are not read again.
    """
    with service.swap_lock:
        commit = _current(service)
        served = service.engine
        if served is not None and (commit is None or _is_served(service, commit)):
            return served.index
    return load_index(
        service.index_dir,
        model=engine.embedder.name,
        previous=served.index if served else None,
        search=service.searches_here,
    )


def _publisher(service: Service, engine: Engine) -> Publish:
    """Make a staged commit current and serve it in one step under ``swap_lock``.

    A request that sees the new ``current`` before the swap waits the moment it takes in ``_reload``
    instead of loading this commit a second time.
    """

    def publish(index: VectorIndex, commit: Path) -> None:
        new_engine = engine.with_index(index)
        with service.swap_lock:
            make_current(service.index_dir, commit)
            service.swap(new_engine)

    return publish


def recover_sources(service: Service) -> None:
    """Bring the index in line with the stored records: a crash after a 201 or a 204 loses nothing."""
    engine = service.engine
    if engine is None:
        return
    writes.recover_sources(
        service.index_dir, partial(_latest_index, service, engine), engine.embedder, _publisher(service, engine)
    )


def add_document(service: Service, doc: Document, source: StoredSource) -> int:
    """Store a document's source durably, index it, and serve the new index.

    Returns:
        The document's passage count in the new index.
    """
    engine = _require_engine(service)
    index = writes.add_document(
        service.index_dir, partial(_latest_index, service, engine), engine.embedder, doc, source,
        _publisher(service, engine),
    )  # fmt: skip
    schedule_merge(service)
    return index.passage_count(doc.id)


def remove_document(service: Service, document_id: str) -> None:
    """Delete a document from the index and its stored source.

    Raises:
        DocumentNotFound: If the newest index does not hold it.
    """
    engine = _require_engine(service)
    writes.remove_document(
        service.index_dir, partial(_latest_index, service, engine), engine.embedder, document_id,
        _publisher(service, engine),
    )  # fmt: skip
    schedule_merge(service)


def schedule_merge(service: Service) -> None:
    """Merge segments in a background thread if the policy asks for it and no merge runs in this process.

    Reads and writes go on meanwhile; the merge takes the writer lock only to commit.
    """
    engine = service.engine
    if engine is None or not writes.merge_plan(engine.index) or not service.merging.acquire(blocking=False):
        return

    def run() -> None:
        try:
            current = _require_engine(service)
            writes.merge_all(service.index_dir, partial(_latest_index, service, current), _publisher(service, current))
        except (QAError, OSError) as exc:
            logger.error("merge failed (the index keeps its segments): %s", exc)
        finally:
            service.merging.release()

    threading.Thread(target=run, name="qa-merge", daemon=True).start()


def _require_engine(service: Service) -> Engine:
    engine = service.engine
    if engine is None:
        raise IndexMissingError(service.unavailable or "no index is loaded")
    return engine


def _reload(service: Service) -> None:
    """Serve the current commit, unless it is already served.

    Under ``swap_lock``, so it waits for a commit this process is making current (and then has nothing
    to do) and never swaps in a commit older than the one served.
    """
    embedder = service.embedder
    if embedder is None:
        return
    with service.swap_lock:
        commit = _current(service)
        if commit is None or commit == service.failed_commit or _is_served(service, commit):
            return
        previous = service.engine
        try:
            index = load_index(
                service.index_dir,
                model=embedder.name,
                previous=previous.index if previous else None,
                search=service.searches_here,
            )
            engine = (
                previous.with_index(index)
                if previous is not None
                else engine_of(index, embedder, service.settings, service.searcher)
            )
        except (QAError, OSError) as exc:
            service.failed_commit = commit  # do not verify a broken commit again on every request
            logger.warning("keeping the served index; cannot load the current commit: %s", exc)
            if previous is None:
                service.unavailable = public_reason(exc)
            return
        service.swap(engine)
        logger.info("now serving %s", service.served_commit)
    if previous is None:
        _recover_logged(service)


async def refresh_if_stale(service: Service) -> None:
    """Load the current commit first if another process (a worker, `qa index`, a merge) made one current.

    Checked on every request (one ``lstat`` while the link stays the same: ``_current_now``), and the
    request waits for the load: a document added or deleted through one worker is seen by every worker once its
    201 or 204 is sent, also while this worker has a write of its own in progress.
    """
    if service.embedder is None or service.reload_lock is None:
        return
    commit = _current_now(service)
    if commit is None or commit == service.failed_commit or _is_served(service, commit):
        return
    async with service.reload_lock:
        await anyio.to_thread.run_sync(_reload, service, abandon_on_cancel=True)
