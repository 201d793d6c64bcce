"""Durable copies of uploaded documents, kept in ``<index_dir>/sources/``.

An upload is acknowledged only after its bytes are on disk, so a crash
between the 201 and the next index build loses nothing: at startup, every
stored source that the loaded index lacks (or holds in another version) is
indexed again.

One file per document, named by the sha256 of its id (an id is never used as
a path), written to a temporary name in the same directory, fsynced, swapped
in with ``os.replace`` and followed by an fsync of the directory. The file is a
JSON header line, then the uploaded bytes unchanged::

    {"format": 1, "document_id": "notes/a.md", "title": null, "sha256": "<of the bytes>"}\\n
    <bytes>
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.index import fsync_dir

logger = logging.getLogger(__name__)

SOURCES_DIR = "sources"
SOURCE_FORMAT = 1
SUFFIX = ".src"


@dataclass(frozen=True, slots=True)
class StoredSource:
    """An uploaded document as stored."""

    document_id: str
    title: str | None
    data: bytes


def sources_dir(index_dir: Path) -> Path:
    """Where uploaded sources live."""
    return index_dir / SOURCES_DIR


def source_path(index_dir: Path, document_id: str) -> Path:
    """The file of one document's source: a hash of the id, never the id itself."""
    name = hashlib.sha256(document_id.encode("utf-8")).hexdigest()
    return sources_dir(index_dir) / f"{name}{SUFFIX}"


def write_source(index_dir: Path, source: StoredSource) -> None:
    """Store a source durably, replacing any earlier version of the same id."""
    folder = sources_dir(index_dir)
    folder.mkdir(parents=True, exist_ok=True)
    header = {
        "format": SOURCE_FORMAT,
        "document_id": source.document_id,
        "title": source.title,
        "sha256": hashlib.sha256(source.data).hexdigest(),
    }
    final = source_path(index_dir, source.document_id)
    tmp = folder / f".{final.name}.{secrets.token_hex(4)}.tmp"
    try:
        with tmp.open("wb") as handle:
            handle.write(json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n")
            handle.write(source.data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(folder)


def read_source(path: Path) -> StoredSource:
    """Parse one stored source.

    Raises:
        ValueError: If the header is damaged or the bytes do not match its checksum.
    """
    raw = path.read_bytes()
    head, sep, data = raw.partition(b"\n")
    header = json.loads(head)
    if not sep or header.get("format") != SOURCE_FORMAT:
        raise ValueError(f"{path.name}: not a format-{SOURCE_FORMAT} source file")
    if hashlib.sha256(data).hexdigest() != header.get("sha256"):
        raise ValueError(f"{path.name}: checksum mismatch")
    return StoredSource(str(header["document_id"]), header.get("title"), data)


def load_source(index_dir: Path, document_id: str) -> StoredSource | None:
    """The stored source of one document, if there is a readable one."""
    path = source_path(index_dir, document_id)
    try:
        return read_source(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable source %s: %s", path, exc)
        return None


def iter_sources(index_dir: Path) -> Iterator[StoredSource]:
    """Every readable stored source; damaged files are logged and skipped."""
    folder = sources_dir(index_dir)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            yield read_source(path)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable source %s: %s", path, exc)


def delete_source(index_dir: Path, document_id: str) -> None:
    """Remove a document's stored source durably, if there is one."""
    path = source_path(index_dir, document_id)
    if path.exists():
        path.unlink()
        fsync_dir(path.parent)
