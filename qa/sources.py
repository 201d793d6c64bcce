"""Durable records of the documents written through the API, kept in ``<index_dir>/sources/``.

They are part of the index's state: every build includes them, whoever makes it
(a write, a server's recovery at start, or ``qa index`` of a corpus directory,
where an upload replaces a corpus file of the same id and a deletion keeps the
corpus file out). An upload is acknowledged only after its bytes are on disk,
so a crash between the 201 and the next index build loses nothing: at startup,
every stored source that the loaded index lacks (or holds in another version)
is indexed again, and every deleted document it still holds is removed.

A deletion is a record too (a *tombstone*: the header with ``"deleted": true``
and no bytes), in the same file as the document's upload would be, so each id
has exactly one state on disk and one atomic rename changes it.

One file per document, named by the sha256 of its id (an id is never used as
a path), written to a temporary name in the same directory, fsynced, swapped
in with ``os.replace`` and followed by an fsync of the directory. The file is a
JSON header line, then the uploaded bytes unchanged::

    {"format": 1, "document_id": "notes/a.md", "title": null, "sha256": "<of the bytes>"}\\n
    <bytes>

The header also holds ``"metadata"`` when the upload came with some (``qa.metadata``).

A tombstone adds ``"deleted": true`` to the header and has no bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.files import fsync_dir, write_durably
from qa.ingest import parse_document
from qa.metadata import MetaValue, metadata_from_record, metadata_record
from qa.types import Document

logger = logging.getLogger(__name__)

SOURCES_DIR = "sources"
SOURCE_FORMAT = 1
SUFFIX = ".src"


@dataclass(frozen=True, slots=True)
class StoredSource:
    """An uploaded document as stored, or the record that it was deleted (``deleted``, no bytes)."""

    document_id: str
    title: str | None
    data: bytes
    deleted: bool = False
    metadata: Mapping[str, MetaValue] = field(default_factory=dict)


def tombstone(document_id: str) -> StoredSource:
    """The record that a document was deleted through the API."""
    return StoredSource(document_id, None, b"", deleted=True)


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
    if source.deleted:
        header["deleted"] = True
    if source.metadata:
        header["metadata"] = metadata_record(source.metadata)
    data = json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n" + source.data
    write_durably(source_path(index_dir, source.document_id), data)


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
    deleted = header.get("deleted", False) is True
    metadata = metadata_from_record(header.get("metadata") or {})
    return StoredSource(str(header["document_id"]), header.get("title"), data, deleted=deleted, metadata=metadata)


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
    """Remove a document's stored record (source or tombstone) durably, if there is one."""
    path = source_path(index_dir, document_id)
    if path.exists():
        path.unlink()
        fsync_dir(path.parent)


def stored_document(source: StoredSource) -> Document:
    """Parse a stored upload as it was parsed when it was written.

    Raises:
        CorpusError: If it cannot be parsed (an upload from an older version with other rules).
    """
    return parse_document(source.document_id, source.data, title=source.title, metadata=dict(source.metadata))


def with_sources(
    documents: Iterable[Document], stored: Iterable[StoredSource], *, log: Callable[[str], None] = logger.warning
) -> tuple[list[Document], int, int]:
    """Documents as the API left them: uploads replace or join ``documents``, tombstones remove.

    Returns:
        The documents sorted by id, the number of uploads kept and the number of documents left out
        because they were deleted through the API.
    """
    by_id = {doc.id: doc for doc in documents}
    kept = dropped = 0
    for source in stored:
        if source.deleted:
            dropped += by_id.pop(source.document_id, None) is not None
            continue
        try:
            by_id[source.document_id] = stored_document(source)
            kept += 1
        except CorpusError as exc:
            log(f"stored upload cannot be indexed: {exc}")
    return sorted(by_id.values(), key=lambda d: d.id), kept, dropped
