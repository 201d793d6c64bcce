"""The write path: stored sources, commits, recovery and merges, for every face that changes an index.

``qa index``, the API and a cluster build all change an index through these functions, and only
under ``qa.storage.writer_lock`` (one commit at a time across processes). A change starts from the
newest commit on disk, adds one segment for what it adds and tombstones for what it removes, and
publishes the new commit; nothing else is rewritten. ``publish`` is where a server swaps its engine:
it is called with the staged index and its commit file, and must make the commit current
(``qa.storage.make_current``), the default.

Merges keep the number of segments small under a tiered policy: when ``MERGE_FACTOR`` segments are
of one size tier (a power of ``MERGE_FACTOR`` in live passages), they are merged into one, and a
segment with at least ``EXPUNGE_SHARE`` of its passages deleted is rewritten without them. A merge
reads and writes outside the writer lock (readers and writers go on), and takes the lock only to
commit: if one of its segments left the index meanwhile, its work is dropped; documents deleted
from its segments meanwhile are carried over as tombstones. Segments no commit names are removed
when the next commit prunes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from qa.build import merge_segments, segment_of, update_index, with_segments
from qa.embed import Embedder
from qa.errors import NO_DOCUMENT, DocumentNotFound
from qa.files import sha256_file
from qa.index import Segment, VectorIndex, manifest_of, new_segment_name, view_of
from qa.sources import (
    StoredSource,
    delete_source,
    iter_sources,
    load_source,
    tombstone,
    with_sources,
    write_source,
)
from qa.storage import (
    gather_into,
    legacy_build,
    make_current,
    merge_lock,
    prune_index,
    read_texts,
    stage_commit,
    staging_folder,
    write_segment,
    writer_lock,
)
from qa.types import Document

logger = logging.getLogger(__name__)

# Segments of one size tier merged at once; also the ratio between tiers.
MERGE_FACTOR = 10
# A segment with at least this share of its passages deleted is rewritten without them.
EXPUNGE_SHARE = 0.5

Publish = Callable[[VectorIndex, Path], None]
Latest = Callable[[], VectorIndex]


def make_current_of(index_dir: Path) -> Publish:
    """The plain ``publish``: make the commit current, nothing to swap."""
    return lambda index, commit: make_current(index_dir, commit)


def commit(index_dir: Path, index: VectorIndex, publish: Publish | None = None) -> VectorIndex:
    """Write ``index``'s new segments and its commit, publish it, and prune; the caller holds the writer lock."""
    path = stage_commit(index, index_dir)
    (publish or make_current_of(index_dir))(index, path)
    prune_index(index_dir)
    return index


def add_document(
    index_dir: Path, latest: Latest, embedder: Embedder, doc: Document, source: StoredSource, publish: Publish
) -> VectorIndex:
    """Store a document's source durably, then commit a segment holding it (a replace tombstones the old one).

    If indexing fails, the stored record goes back to what it was, so nothing half-done survives.

    Returns:
        The committed index.
    """
    with writer_lock(index_dir):
        previous = load_source(index_dir, doc.id)
        write_source(index_dir, source)
        try:
            return commit(index_dir, update_index(latest(), embedder, add=[doc]), publish)
        except BaseException:
            _restore(index_dir, doc.id, previous)
            raise


def remove_document(index_dir: Path, latest: Latest, embedder: Embedder, document_id: str, publish: Publish) -> None:
    """Commit a tombstone for a document, and store its deletion.

    Raises:
        DocumentNotFound: If the newest index does not hold it.
    """
    with writer_lock(index_dir):
        base = latest()
        if document_id not in base.documents:
            raise DocumentNotFound(NO_DOCUMENT)
        # The deletion record first: it replaces the upload, if any, and keeps a corpus file of the same id
        # out of later builds (`qa index`). A crash after it removes the document at the next start.
        previous = load_source(index_dir, document_id)
        write_source(index_dir, tombstone(document_id))
        try:
            commit(index_dir, update_index(base, embedder, remove=[document_id]), publish)
        except BaseException:
            _restore(index_dir, document_id, previous)
            raise


def _restore(index_dir: Path, document_id: str, previous: StoredSource | None) -> None:
    if previous is None:
        delete_source(index_dir, document_id)
    else:
        write_source(index_dir, previous)


def out_of_date(index: VectorIndex, stored: Sequence[StoredSource]) -> tuple[list[Document], list[str]]:
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


def recover_sources(index_dir: Path, latest: Latest, embedder: Embedder, publish: Publish) -> bool:
    """Bring the index in line with the stored records: a crash after a 201 or a 204 loses nothing.

    Returns:
        Whether a commit was needed.
    """
    stored = list(iter_sources(index_dir))
    if not stored:
        return False
    with writer_lock(index_dir):
        base = latest()
        add, remove = out_of_date(base, stored)
        if not add and not remove:
            return False
        logger.warning("re-applying %d stored upload(s) and %d deletion(s) the index lacks", len(add), len(remove))
        commit(index_dir, update_index(base, embedder, add=add, remove=remove), publish)
        return True


# ---- the format before segments ------------------------------------------------------------


def migrate_format_1(index_dir: Path) -> bool:
    """Convert an index of format 1 (one whole build under ``builds/``) into one segment and a commit.

    Its vectors are kept (nothing is embedded); its lexical index is made again as postings. The caller
    holds the writer lock. A damaged build is not converted (``qa index`` then indexes everything again).

    Returns:
        Whether there was a build of format 1 to convert, and it was converted.
    """
    build = legacy_build(index_dir)
    if build is None:
        return False
    try:
        record = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        files: dict[str, str] = record["files"]
        if record["format"] != 1 or any(sha256_file(build / name) != digest for name, digest in files.items()):
            return False
        documents, passages = read_texts(build)
        passage_vectors = np.load(build / "passage_vectors.npy", mmap_mode="r", allow_pickle=False)
        unit_vectors = np.load(build / "unit_vectors.npy", mmap_mode="r", allow_pickle=False)
        settings = dict(record["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    quantize = bool(settings.get("quantize_vectors", False))
    ordered = sorted(documents.values(), key=lambda d: d.id)
    segment = segment_of(ordered, passages, np.asarray(passage_vectors), np.asarray(unit_vectors), quantize=quantize)
    index = view_of(manifest_of(record["model"], int(record["dim"]), settings, [segment], [frozenset()]), [segment])
    commit(index_dir, index)  # the pruning removes builds/
    logger.warning("converted the index in %s to format 2 (segments), its vectors kept", index_dir)
    return True


# ---- merges ----------------------------------------------------------------------------


def _tier(passages: int) -> int:
    return int(math.log(max(passages, 1), MERGE_FACTOR))


def merge_plan(index: VectorIndex) -> tuple[str, ...]:
    """The segments to merge next under the tiered policy, smallest tier first; empty when none."""
    live = [int(index.live[a:b].sum()) for a, b in zip(index.bases[:-1], index.bases[1:], strict=True)]
    tiers: dict[int, list[str]] = {}
    for segment, n in zip(index.segments, live, strict=True):
        tiers.setdefault(_tier(n), []).append(segment.name)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= MERGE_FACTOR:
            return tuple(tiers[tier][:MERGE_FACTOR])
    for segment, n in zip(index.segments, live, strict=True):
        if segment.passages and 1 - n / len(segment.passages) >= EXPUNGE_SHARE:
            return (segment.name,)
    return ()


def replace_segments(
    base: VectorIndex, names: Sequence[str], merged: Segment, since: VectorIndex
) -> VectorIndex | None:
    """``base`` with the named segments replaced by ``merged`` (made from them as ``since`` held them).

    Documents deleted from the named segments after ``since`` are tombstoned in ``merged``.

    Returns:
        None if a named segment is no longer in ``base``: the merge is stale.
    """
    held = dict(zip((s.name for s in base.segments), base.deleted, strict=True))
    if not all(name in held for name in names):
        return None
    before = dict(zip((s.name for s in since.segments), since.deleted, strict=True))
    newly = frozenset().union(*(held[name] - before[name] for name in names)) & merged.documents.keys()
    segments: list[Segment] = []
    deleted: list[frozenset[str]] = []
    for segment, gone in zip(base.segments, base.deleted, strict=True):
        if segment.name == names[0]:
            segments.append(merged)
            deleted.append(frozenset(newly))
        elif segment.name not in names:
            segments.append(segment)
            deleted.append(gone)
    return with_segments(base, segments, deleted)


def write_merge(index_dir: Path, index: VectorIndex, names: Sequence[str]) -> Segment:
    """Merge the named segments of ``index`` into a new segment, written (not yet committed). Its vectors
    are streamed into its files as they are read, so a merge's memory does not grow with its size."""
    name = new_segment_name()
    merged = merge_segments(index, names, name=name, gather=gather_into(staging_folder(index_dir, name)))
    write_segment(merged, index_dir)
    return merged


def merge_once(index_dir: Path, latest: Latest, publish: Publish | None = None) -> bool:
    """Run the next merge the policy asks for, if any, and if no other process is merging.

    Returns:
        Whether a merge was committed.
    """
    with merge_lock(index_dir) as ours:
        if not ours:
            return False
        with writer_lock(index_dir):
            since = latest()
        names = merge_plan(since)
        if not names:
            return False
        merged = write_merge(index_dir, since, names)
        merged.searchable()  # before it is served, not on the first question after
        with writer_lock(index_dir):
            replaced = replace_segments(latest(), names, merged, since)
            if replaced is None:
                logger.info("merge of %d segments dropped: the index changed under it", len(names))
                return False
            commit(index_dir, replaced, publish)
        logger.info("merged %d segments into %s (%d passages)", len(names), merged.name, len(merged.passages))
    with writer_lock(index_dir):
        prune_index(index_dir)  # the merged-away segments, and any a killed merge left, now no merge runs here
    return True


def merge_all(index_dir: Path, latest: Latest, publish: Publish | None = None) -> int:
    """Merge until the policy asks for nothing more; returns the number of merges."""
    merges = 0
    while merge_once(index_dir, latest, publish):
        merges += 1
    return merges
