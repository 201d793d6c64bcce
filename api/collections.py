"""The collections one app serves: a ``Service`` for each, opened on first use.

The default collection's service starts with the app. Another collection's opens when a request
first names it: its index loads with the app's model (and the cross-encoder, loaded once per
process), so an idle collection costs nothing, and a collection made or deleted by another worker
is seen on the next request (its ``collection.json`` is looked at on every request).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import anyio

from api.state import Service, start
from qa.build import empty_index
from qa.collections import (
    DEFAULT,
    RECORD,
    Collection,
    collection_dir,
    create_collection,
    delete_collection,
    list_collections,
    read_collection,
)
from qa.errors import CollectionNotFound, IndexMissingError
from qa.retrieve import LOCAL
from qa.storage import save_index

# An unknown collection's 404 (docs/api.md: a 404 does not repeat what was asked for).
NOT_FOUND = "there is no such collection"


def record_stamp(index_dir: Path, name: str) -> tuple[int, int, int] | None:
    """Device, inode and change time of collection ``name``'s record (None without one): a collection created
    again has a new record, and so a new stamp."""
    try:
        status = os.stat(collection_dir(index_dir, name) / RECORD)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino, status.st_ctime_ns


class Collections:
    """Every collection's service, by name."""

    def __init__(self, default: Service, on_open: Callable[[Service], None] = lambda service: None) -> None:
        self.default = default
        self.services: dict[str, Service] = {DEFAULT: default}
        self.stamps: dict[str, tuple[int, int, int]] = {}  # each open collection's record_stamp when opened
        self.opening = asyncio.Lock()
        self.on_open = on_open  # metrics: the new collection's index gauges

    @property
    def index_dir(self) -> Path:
        return self.default.index_dir

    async def service(self, name: str) -> Service:
        """The service of collection ``name``, opened if it was not, or opened again if its record was replaced
        since (deleted and created again, here or by another worker, maybe with another read rule: the old
        service would go on serving the old documents under the old rule).

        Raises:
            CollectionNotFound: If there is no such collection (404; the name is not repeated).
        """
        if name == DEFAULT:
            return self.default
        stamp = record_stamp(self.index_dir, name)
        service = self.services.get(name)
        if stamp is None:
            self.services.pop(name, None)  # deleted, here or by another worker
            raise CollectionNotFound(NOT_FOUND)
        if service is not None and self.stamps.get(name) == stamp:
            return service
        async with self.opening:
            service = self.services.get(name)
            if service is None or self.stamps.get(name) != stamp:
                try:
                    collection = self.record(name)
                except CollectionNotFound:
                    self.services.pop(name, None)
                    raise
                service = await anyio.to_thread.run_sync(self._open, collection)
                self.services[name], self.stamps[name] = service, stamp
                self.on_open(service)
        return service

    def is_open(self, name: str) -> bool:
        """Whether collection ``name`` is open here, as its record now stands (``service`` opens it otherwise)."""
        if name == DEFAULT:
            return True
        stamp = self.stamps.get(name)
        return name in self.services and stamp is not None and stamp == record_stamp(self.index_dir, name)

    def record(self, name: str) -> Collection:
        """Collection ``name``'s record (its read rule), read without opening its index.

        Raises:
            CollectionNotFound: If there is no such collection (404; the name is not repeated).
        """
        try:
            return read_collection(self.index_dir, name)
        except CollectionNotFound:
            raise CollectionNotFound(NOT_FOUND) from None

    def any_private(self, everywhere: bool) -> bool:
        """Whether reading some collection needs a key (``everywhere``: QA_REQUIRE_KEY_FOR_READS): then an
        unknown name is told apart from a private collection only to a caller who could read either."""
        return everywhere or any(c.require_key_for_reads for c in list_collections(self.index_dir))

    def _open(self, collection: Collection) -> Service:
        default = self.default
        settings = default.settings.model_copy(update={"index_dir": collection_dir(self.index_dir, collection.name)})
        # Collections other than the default are searched here, also under `qa serve --ray`, whose shards
        # hold the default collection's segments.
        service = Service(settings, SimpleNamespace(engine=None), embedder=default.embedder, searcher=LOCAL)
        service.collection = collection
        service.write_lock, service.reload_lock = asyncio.Lock(), asyncio.Lock()
        start(service, None)
        return service

    def create(self, collection: Collection) -> None:
        """Make a collection with an empty index of the default collection's model and settings.

        Raises:
            CollectionExists: If one of that name exists (409).
            IndexMissingError: While the default collection has no index to take the settings from (503).
        """
        engine = self.default.engine
        if engine is None:
            raise IndexMissingError(self.default.unavailable or "no index is loaded")
        manifest = engine.index.manifest
        empty = empty_index(manifest.model, manifest.dim, manifest.settings)
        create_collection(self.index_dir, collection, write_index=lambda folder: save_index(empty, folder))

    def delete(self, name: str) -> None:
        """Remove a collection and its documents (CollectionNotFound, or CollectionExists for ``default``)."""
        try:
            delete_collection(self.index_dir, name)
        except CollectionNotFound:
            raise CollectionNotFound(NOT_FOUND) from None
        self.services.pop(name, None)
