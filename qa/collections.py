"""Named collections: separate document sets, each with its own index, under one index directory.

The ``default`` collection is the index directory itself, so everything that worked before
collections existed keeps working. Every other collection lives in its own folder::

    index/                       the default collection's index (commits, segments, sources)
    index/collections/policies/  the collection "policies": an index of its own
        collection.json          {"format": 1, "name": "policies", "require_key_for_reads": false}
        commits/ segments/ ...

A collection exists when its folder holds ``collection.json``. Creating one builds the folder
(the record and an empty index) under a temporary name and renames it into place, and deleting one
renames it away before removing it, so a crash at any point leaves it either wholly there or gone.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.errors import CollectionExists, CollectionNotFound, QueryError
from qa.files import fsync_dir, fsync_tree, write_durably

DEFAULT = "default"
COLLECTIONS_DIR = "collections"
RECORD = "collection.json"
RECORD_FORMAT = 1
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Folders being made or removed: never collections, cleared by the next listing's owner (``sweep``).
_PENDING = (".creating-", ".deleting-")


@dataclass(frozen=True, slots=True)
class Collection:
    """A collection as recorded.

    Attributes:
        name: Its name (``[a-z0-9][a-z0-9_-]{0,63}``).
        require_key_for_reads: Whether reading it needs a key with a read scope on it (the default
            collection follows ``QA_REQUIRE_KEY_FOR_READS`` instead).
    """

    name: str
    require_key_for_reads: bool = False


def check_name(name: str) -> str:
    """``name`` if it can name a collection.

    Raises:
        QueryError: Saying which names are allowed (422).
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise QueryError("a collection name is 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit")
    return name


def collection_dir(index_dir: Path, name: str) -> Path:
    """Where a collection's index lives (the index directory itself for ``default``)."""
    return index_dir if check_name(name) == DEFAULT else index_dir / COLLECTIONS_DIR / name


def read_collection(index_dir: Path, name: str) -> Collection:
    """A collection's record.

    Raises:
        CollectionNotFound: If there is no such collection (404).
    """
    if check_name(name) == DEFAULT:
        return Collection(DEFAULT)
    try:
        record = json.loads((collection_dir(index_dir, name) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CollectionNotFound(f"there is no collection named {name!r}") from None
    return Collection(name, record.get("require_key_for_reads") is True)


def list_collections(index_dir: Path) -> list[Collection]:
    """Every collection, ``default`` first, then by name."""
    folder = index_dir / COLLECTIONS_DIR
    names = sorted(p.name for p in folder.iterdir() if NAME.fullmatch(p.name)) if folder.is_dir() else []
    found = [Collection(DEFAULT)]
    for name in names:
        try:
            found.append(read_collection(index_dir, name))
        except CollectionNotFound:
            continue  # a folder without its record is not a collection
    return found


def create_collection(index_dir: Path, collection: Collection, *, write_index: Callable[[Path], object]) -> None:
    """Make a collection: its record and an empty index (``write_index`` writes one into a folder).

    Raises:
        CollectionExists: If a collection of that name exists (``default`` always does) (409).
    """
    name = check_name(collection.name)
    target = collection_dir(index_dir, name)
    if name == DEFAULT or (target / RECORD).is_file():
        raise CollectionExists(f"a collection named {name!r} already exists")
    parent = index_dir / COLLECTIONS_DIR
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".creating-{name}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        write_index(staging)
        record = {"format": RECORD_FORMAT, "name": name, "require_key_for_reads": collection.require_key_for_reads}
        write_durably(staging / RECORD, json.dumps(record).encode())
        fsync_tree(staging)
        if target.exists():  # a folder without a record: left by hand, not a collection
            raise CollectionExists(f"a folder named {name!r} is in the way under {COLLECTIONS_DIR}/")
        staging.rename(target)  # on POSIX, fails if a concurrent create won the name: it is not empty
        fsync_dir(parent)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if (target / RECORD).is_file():
            raise CollectionExists(f"a collection named {name!r} already exists") from exc
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def delete_collection(index_dir: Path, name: str) -> None:
    """Remove a collection and everything in it.

    Raises:
        CollectionExists: For ``default``, which cannot be deleted (409).
        CollectionNotFound: If there is no such collection (404).
    """
    if check_name(name) == DEFAULT:
        raise CollectionExists("the default collection cannot be deleted")
    read_collection(index_dir, name)
    parent = index_dir / COLLECTIONS_DIR
    doomed = parent / f".deleting-{name}-{secrets.token_hex(4)}"
    try:
        collection_dir(index_dir, name).rename(doomed)
    except FileNotFoundError:
        raise CollectionNotFound(f"there is no collection named {name!r}") from None
    fsync_dir(parent)
    shutil.rmtree(doomed, ignore_errors=True)


def sweep(index_dir: Path) -> None:
    """Remove what an interrupted create or delete left behind (at a server's start: not while one runs)."""
    folder = index_dir / COLLECTIONS_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith(_PENDING):
                shutil.rmtree(path, ignore_errors=True)
