"""The collections one app serves: a ``Service`` for each, opened on first use.

The default collection's service starts with the app. Another collection's opens when a request
first names it: its index loads with the app's model (and the cross-encoder, loaded once per
process), so an idle collection costs nothing, and a collection made or deleted by another worker
is seen on the next request (its ``collection.json`` is looked at on every request).
"""

from __future__ import annotations

import asyncio
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
    read_collection,
)
from qa.errors import CollectionNotFound, IndexMissingError
from qa.retrieve import LOCAL
from qa.storage import save_index


class Collections:
    """Every collection's service, by name."""

    def __init__(self, default: Service, on_open: Callable[[Service], None] = lambda service: None) -> None:
        self.default = default
        self.services: dict[str, Service] = {DEFAULT: default}
        self.opening = asyncio.Lock()
        self.on_open = on_open  # metrics: the new collection's index gauges

    @property
    def index_dir(self) -> Path:
        return self.default.index_dir

    async def service(self, name: str) -> Service:
        """The service of collection ``name``, opened if it was not.

        Raises:
            CollectionNotFound: If there is no such collection (404).
        """
        if name == DEFAULT:
            return self.default
        service = self.services.get(name)
        if service is not None:
            if (service.index_dir / RECORD).is_file():
                return service
            self.services.pop(name, None)  # deleted, here or by another worker
            raise CollectionNotFound(f"there is no collection named {name!r}")
        async with self.opening:
            service = self.services.get(name)
            if service is None:
                service = await anyio.to_thread.run_sync(self._open, read_collection(self.index_dir, name))
                self.services[name] = service
                self.on_open(service)
        return service

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
        delete_collection(self.index_dir, name)
        self.services.pop(name, None)
