"""The index on disk: immutable segments, and commits naming them, swapped in atomically.

Layout (format 2)::

    index/current -> commits/<generation>.json  # a symlink, replaced with os.replace
    index/commits/<generation>.json             # live segments, each with its sha256 and tombstones
    index/segments/<name>/manifest.json         # format, model, counts, sha256 of every file
                          documents.jsonl       # id, title, format, text, blocks
                          passages.jsonl        # id, document, section path, offsets, units
                          passage_vectors.npy   # float32 (n_passages, dim), L2-normalised
                          unit_vectors.npy      # float32 (n_units, dim): sentences, items, rows
                          postings.npz          # lexical index: rows and frequencies per token
                          postings_vocab.json   # the tokens, in column order
                          dense.faiss           # only for HNSW or 8-bit indexes (a flat one is the vectors)

A segment is written to ``segments/<name>.tmp``, every file fsynced, then renamed; it never
changes afterwards. A commit is written to a temporary file, fsynced and renamed, and then the
``current`` link is swapped, so a reader sees the old commit or the new one and never a
half-written one. A write costs its own segment and a commit of a few hundred bytes, whatever the
size of the corpus. Loading verifies the sha256 of every file of a segment before numpy or FAISS
reads a byte of it (FAISS's reader is not safe on untrusted input), and each segment's manifest
against the sha256 its commit recorded.

Commits older than the newest ``KEEP_COMMITS`` besides the current one are removed, and with them
every segment no kept commit names, so a reader that resolved an older link can finish loading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexFormatError, IndexMissingError
from qa.files import fsync_dir, fsync_tree, sha256_file, write_durably
from qa.index import (
    FLAT_TYPE,
    FORMAT_VERSION,
    HNSW_EF_SEARCH,
    Manifest,
    Postings,
    Segment,
    SegmentRef,
    VectorIndex,
    unit_offsets_of,
    view_of,
)
from qa.types import Document, Passage, Span, document_from_record, document_record

# Commits kept besides the current one, so a reader that resolved the old link can finish loading.
KEEP_COMMITS = 2
REBUILD = "rebuild with `qa index`"
PENDING = "pending.json"
_COMMIT_NAME = re.compile(r"^(\d{8,})\.json$")


def _passage_record(p: Passage) -> dict[str, Any]:
    return {
        "id": p.id,
        "doc_id": p.doc_id,
        "section_path": list(p.section_path),
        "start": p.start,
        "end": p.end,
        "kind": p.kind,
        "context": p.context,
        "units": [[u.start, u.end] for u in p.units],
    }


def _write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# Rows read and written at a time when a merge streams vectors into its segment's files (24 MB at 384 dimensions).
STREAM_ROWS = 16_384


def _written_at(array: Any, path: Path) -> bool:
    """Whether ``array`` is already the file ``path`` (vectors a merge streamed there)."""
    return isinstance(array, np.memmap) and array.filename is not None and Path(array.filename) == path.resolve()


def _read_rows(array: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi``; from a whole memory-mapped ``.npy`` by a plain read, so the pages are not mapped
    into this process (a merge of a million rows would otherwise hold every page it read)."""
    if isinstance(array, np.memmap) and array.filename is not None and array.flags.c_contiguous:
        row_bytes = array.dtype.itemsize * int(np.prod(array.shape[1:]))
        if array.offset + array.shape[0] * row_bytes == os.path.getsize(array.filename):
            return np.fromfile(
                array.filename, dtype=array.dtype, count=(hi - lo) * row_bytes // array.dtype.itemsize,
                offset=array.offset + lo * row_bytes,
            ).reshape(hi - lo, *array.shape[1:])  # fmt: skip
    return np.asarray(array[lo:hi])


def gather_into(folder: Path) -> Callable[[Sequence[tuple[np.ndarray, int, int]], int, str], np.ndarray]:
    """A ``qa.build.Gather`` that writes the rows straight into ``folder``'s ``.npy`` file of that name,
    STREAM_ROWS at a time, and returns the file memory-mapped: a merge holds one chunk of vectors, not
    the merged matrices. ``write_segment`` keeps the files when it writes the segment there."""

    def gather(parts: Sequence[tuple[np.ndarray, int, int]], dim: int, file_name: str) -> np.ndarray:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        n = sum(hi - lo for _, lo, hi in parts)
        header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        offset = header.offset
        del header
        with path.open("r+b") as handle:
            handle.seek(offset)
            for array, lo, hi in parts:
                for start in range(lo, hi, STREAM_ROWS):
                    rows = _read_rows(array, start, min(hi, start + STREAM_ROWS))
                    handle.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
        gathered: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
        return gathered

    return gather


def staging_folder(index_dir: Path, name: str) -> Path:
    """Where segment ``name`` is written before it is renamed into place (``write_segment``)."""
    return index_dir / "segments" / f"{name}.tmp"


def write_segment_files(segment: Segment, folder: Path) -> dict[str, Any]:
    """Write every file of a segment into its directory (empty, or holding the vectors ``gather_into``
    streamed there); returns its manifest record."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    _write_jsonl(folder / "documents.jsonl", (document_record(d) for d in segment.documents.values()))
    _write_jsonl(folder / "passages.jsonl", (_passage_record(p) for p in segment.passages))
    for name, array in (("passage_vectors.npy", segment.passage_vectors), ("unit_vectors.npy", segment.unit_vectors)):
        if not _written_at(array, folder / name):
            np.save(folder / name, np.asarray(array), allow_pickle=False)
    postings = segment.postings
    np.savez(
        folder / "postings.npz",
        indptr=postings.indptr, rows=postings.rows, tfs=postings.tfs, lengths=postings.lengths,
    )  # fmt: skip
    (folder / "postings_vocab.json").write_text(json.dumps(list(postings.vocab), ensure_ascii=False), encoding="utf-8")
    if segment.faiss != FLAT_TYPE:
        faiss.write_index(segment.dense, str(folder / "dense.faiss"))
    record = {
        "format": FORMAT_VERSION,
        "name": segment.name,
        "faiss": segment.faiss,
        "dim": int(np.asarray(segment.passage_vectors).shape[1]),
        "n_documents": len(segment.documents),
        "n_passages": len(segment.passages),
        "n_units": segment.n_units,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()},
    }
    (folder / "manifest.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def write_segment(segment: Segment, index_dir: Path) -> Path:
    """Write a segment under ``segments/``, whole and fsynced, unless it is there already.

    Readers do not see it until a commit names it. Sets ``segment.path``.
    """
    folder = index_dir / "segments"
    final = folder / segment.name
    if segment.path == final and final.is_dir():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(index_dir, segment.name)
    streamed = _written_at(segment.passage_vectors, tmp / "passage_vectors.npy")
    if tmp.exists() and not streamed:  # left by a crash while writing the same segment
        shutil.rmtree(tmp)
    write_segment_files(segment, tmp)
    fsync_tree(tmp)
    os.rename(tmp, final)
    fsync_dir(folder)
    segment.path = final
    # The same values, now read from the page cache instead of held twice: a long build stays bounded.
    segment.passage_vectors = np.load(final / "passage_vectors.npy", mmap_mode="r", allow_pickle=False)
    segment.unit_vectors = np.load(final / "unit_vectors.npy", mmap_mode="r", allow_pickle=False)
    return final


def commit_record(manifest: Manifest, index_dir: Path) -> dict[str, Any]:
    """A commit as JSON-ready data; each segment carries the sha256 of its manifest."""
    record = dataclasses.asdict(manifest)
    record["segments"] = [
        {
            "name": ref.name,
            "sha256": sha256_file(index_dir / "segments" / ref.name / "manifest.json"),
            "deleted": sorted(ref.deleted),
        }
        for ref in manifest.segments
    ]
    return record


def check_index_dir(index_dir: Path) -> None:
    """Refuse an index directory that is a file, or that a file in its path keeps from being made.

    Raises:
        IndexMissingError: Naming the file in the way.
    """
    for folder in (index_dir, *index_dir.parents):
        if folder.is_dir():
            return
        if folder.exists() or folder.is_symlink():
            if folder == index_dir:
                raise IndexMissingError(f"index directory {index_dir} is a file, not a directory")
            raise IndexMissingError(f"index directory {index_dir} is inside {folder}, which is a file, not a directory")


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the index directory's writer lock: one commit at a time, across processes.

    Args:
        index_dir: The index directory (made if it is missing).
        on_wait: Called once, before waiting, when another process holds the lock (``qa index`` says
            so rather than wait in silence).

    Raises:
        IndexMissingError: If ``index_dir`` is a file, or cannot be made for a file in its path.
    """
    with _flock(index_dir, ".lock", blocking=True, on_wait=on_wait):
        yield


@contextlib.contextmanager
def _flock(index_dir: Path, name: str, *, blocking: bool, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    check_index_dir(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / name).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                yield False
                return
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge_lock(index_dir: Path) -> contextlib.AbstractContextManager[bool]:
    """Try to take the merge lock without waiting: yields whether this process now merges."""
    return _flock(index_dir, ".merge.lock", blocking=False)


def save_index(index: VectorIndex, index_dir: Path) -> Path:
    """Write an index's new segments and a commit, and make it current; the caller holds ``writer_lock``.

    The three steps apart (:func:`stage_commit`, :func:`make_current`, :func:`prune_index`) let a server
    swap its engine in at the moment ``current`` moves, without holding readers while files are written.

    Returns:
        The new commit's file.
    """
    commit = stage_commit(index, index_dir)
    make_current(index_dir, commit)
    prune_index(index_dir)
    return commit


def stage_commit(index: VectorIndex, index_dir: Path) -> Path:
    """Write the segments ``index`` holds that are not on disk, then its commit file, fsynced.

    Readers do not see it until :func:`make_current`. ``index.manifest`` gets the commit's generation
    and time, and ``index.path`` its file.
    """
    for segment in index.segments:
        write_segment(segment, index_dir)
    commits = index_dir / "commits"
    commits.mkdir(parents=True, exist_ok=True)
    generation = max((g for g, _ in _commits(index_dir)), default=0) + 1
    index.manifest = dataclasses.replace(
        index.manifest, generation=generation, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    final = commits / f"{generation:08d}.json"
    write_durably(final, (json.dumps(commit_record(index.manifest, index_dir), indent=2) + "\n").encode())
    index.path = final
    return final


def make_current(index_dir: Path, commit: Path) -> None:
    """Point ``current`` at ``commit`` in one atomic rename, durably."""
    link_tmp = index_dir / f"current.{commit.stem}.{secrets.token_hex(3)}.tmp"
    os.symlink(Path("commits") / commit.name, link_tmp)
    os.replace(link_tmp, index_dir / "current")
    fsync_dir(index_dir)


def _commits(index_dir: Path) -> list[tuple[int, Path]]:
    folder = index_dir / "commits"
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _COMMIT_NAME.match(p.name)))


def prune_index(index_dir: Path) -> None:
    """Remove old commits, segments no kept commit names, and what crashed writes left.

    Commits newer than the current one are kept: a writer in another process may be about to make
    one current. Segments an unfinished ``qa index`` run has written (``pending.json``) are kept for
    its rerun, and while a merge runs no segment is removed.
    """
    try:
        current = current_commit(index_dir)
    except IndexMissingError:
        return
    commits = _commits(index_dir)
    generation = next((g for g, p in commits if p == current), None)
    if generation is None:
        return
    older = [p for g, p in commits if g < generation]
    keep = [p for g, p in commits if g >= generation] + older[len(older) - KEEP_COMMITS :]
    for path in older[: max(0, len(older) - KEEP_COMMITS)]:
        path.unlink(missing_ok=True)
    named: set[str] = set(pending_segments(index_dir))
    for path in keep:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            named.update(s["name"] for s in json.loads(path.read_text(encoding="utf-8"))["segments"])
    with merge_lock(index_dir) as nobody_merges:
        # A merge writes its segment before its commit names it: while one runs, segments stay.
        folders = (
            sorted((index_dir / "segments").iterdir()) if nobody_merges and (index_dir / "segments").is_dir() else []
        )
        for folder in folders:
            if folder.name.endswith(".tmp") or folder.name not in named:
                shutil.rmtree(folder, ignore_errors=True)
    for leftover in [*index_dir.glob("current.*.tmp"), *(index_dir / "commits").glob(".*.tmp")]:
        leftover.unlink(missing_ok=True)
    if (index_dir / "builds").is_dir():  # an index of format 1, now rebuilt
        shutil.rmtree(index_dir / "builds", ignore_errors=True)


def pending_segments(index_dir: Path) -> dict[str, str]:
    """Segments an unfinished ``qa index`` run wrote (name to manifest sha256): its rerun goes on from them."""
    try:
        record = json.loads((index_dir / PENDING).read_text(encoding="utf-8"))
        return {str(s["name"]): str(s["sha256"]) for s in record["segments"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def pending_record(index_dir: Path) -> dict[str, Any] | None:
    """The unfinished ``qa index`` run's journal, if there is one (None if absent or unreadable)."""
    try:
        record = json.loads((index_dir / PENDING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_pending(index_dir: Path, settings: dict[str, Any], model: str, segments: list[Segment]) -> None:
    """Record, durably, the segments a ``qa index`` run has written so far and what they were built with."""
    record = {
        "model": model,
        "settings": settings,
        "segments": [
            {"name": s.name, "sha256": sha256_file(index_dir / "segments" / s.name / "manifest.json")} for s in segments
        ],
    }
    write_durably(index_dir / PENDING, json.dumps(record, indent=2).encode())


def clear_pending(index_dir: Path) -> None:
    """Forget the ``qa index`` journal (its run is committed)."""
    if (index_dir / PENDING).exists():
        (index_dir / PENDING).unlink()
        fsync_dir(index_dir)


# ---- reading ---------------------------------------------------------------------------


def current_commit(index_dir: Path) -> Path:
    """The current commit's file (resolved).

    Raises:
        IndexMissingError: If there is no committed index in ``index_dir``.
        IndexFormatError: If the index there is in the format before segments (one whole build).
    """
    link = index_dir / "current"
    try:
        target = link.resolve(strict=False) if link.is_symlink() else link
        found = target.is_file()
    except (OSError, RuntimeError):  # a link loop, or an unreadable directory
        found = False
    if not found and legacy_build(index_dir) is not None:
        raise IndexFormatError(
            f"index in {index_dir} has format 1 (one whole build); this version reads format {FORMAT_VERSION} "
            f"(segments): run `qa index` to convert it (its vectors are kept)"
        )
    if not found:
        raise IndexMissingError(f"no index in {index_dir}: build one with `qa index --index-dir {index_dir}`")
    return target


def read_manifest(commit: Path) -> Manifest:
    """Parse a commit file.

    Raises:
        IndexFormatError: If it is not valid or has another format version.
    """
    try:
        record = json.loads(commit.read_text(encoding="utf-8"))
        segments = tuple(SegmentRef(s["name"], frozenset(s["deleted"])) for s in record.pop("segments"))
        for s in segments:
            if not isinstance(s.name, str) or "/" in s.name or s.name.startswith(".") or not s.name:
                raise ValueError(f"bad segment name {s.name!r}")
        manifest = Manifest(**record, segments=segments)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise IndexFormatError(f"index commit {commit} is damaged ({exc}): {REBUILD}") from exc
    if manifest.format != FORMAT_VERSION:
        raise IndexFormatError(
            f"index commit {commit} has format {manifest.format}, this version reads {FORMAT_VERSION}: {REBUILD}"
        )
    return manifest


def _segment_checksums(commit: Path) -> dict[str, str]:
    try:
        return {s["name"]: s["sha256"] for s in json.loads(commit.read_text(encoding="utf-8"))["segments"]}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise IndexFormatError(f"index commit {commit} is damaged ({exc}): {REBUILD}") from exc


def verify_segment(folder: Path, manifest_sha256: str | None = None) -> dict[str, Any]:
    """Check a segment's manifest (against its commit's sha256) and that it holds exactly its files.

    Returns:
        The segment's manifest record.

    Raises:
        IndexFormatError: Naming the first missing, extra or altered file.
    """
    manifest_path = folder / "manifest.json"
    try:
        if manifest_sha256 is not None and sha256_file(manifest_path) != manifest_sha256:
            raise IndexFormatError(f"index segment {folder} does not match its commit (checksum mismatch): {REBUILD}")
        record = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = record["files"]
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ValueError("its file list is not a map of names to sha256")
        if record["format"] != FORMAT_VERSION:
            raise ValueError(f"format {record['format']}, this version reads {FORMAT_VERSION}")
    except OSError as exc:
        raise IndexFormatError(f"index segment {folder} is missing or unreadable ({exc}): {REBUILD}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexFormatError(f"index segment manifest in {folder} is damaged ({exc}): {REBUILD}") from exc
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    for name in sorted(set(files) | present):
        if name not in present:
            raise IndexFormatError(f"index file {name} is missing from {folder}: {REBUILD}")
        if name not in files:
            raise IndexFormatError(f"index file {name} in {folder} is not in its manifest: {REBUILD}")
        if sha256_file(folder / name) != files[name]:
            raise IndexFormatError(f"index file {name} in {folder} is damaged (checksum mismatch): {REBUILD}")
    return dict(record)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _passage(record: dict[str, Any], documents: dict[str, Document]) -> Passage:
    text = documents[record["doc_id"]].text[record["start"] : record["end"]]
    units = tuple(Span(s, e) for s, e in record["units"])
    return Passage(
        record["id"], record["doc_id"], tuple(record["section_path"]), record["start"], record["end"],
        text, record["kind"], record["context"], units,
    )  # fmt: skip


def read_texts(folder: Path) -> tuple[dict[str, Document], list[Passage]]:
    """The documents and passages a verified folder holds (``documents.jsonl``, ``passages.jsonl``)."""
    documents = {d.id: d for d in map(document_from_record, _read_jsonl(folder / "documents.jsonl"))}
    return documents, [_passage(r, documents) for r in _read_jsonl(folder / "passages.jsonl")]


def legacy_build(index_dir: Path) -> Path | None:
    """The build directory ``current`` points at when the index has the format before segments (1)."""
    link = index_dir / "current"
    try:
        target = link.resolve(strict=False) if link.is_symlink() else link
        return target if (target / "manifest.json").is_file() else None
    except (OSError, RuntimeError):
        return None


def load_segment(folder: Path, manifest_sha256: str | None = None) -> Segment:
    """Verify and read one segment.

    Raises:
        IndexFormatError: If it is damaged or does not match its commit.
    """
    record = verify_segment(folder, manifest_sha256)
    try:
        documents, passages = read_texts(folder)
        passage_vectors = np.load(folder / "passage_vectors.npy", mmap_mode="r", allow_pickle=False)
        unit_vectors = np.load(folder / "unit_vectors.npy", mmap_mode="r", allow_pickle=False)
        with np.load(folder / "postings.npz", allow_pickle=False) as arrays:
            vocab = json.loads((folder / "postings_vocab.json").read_text(encoding="utf-8"))
            postings = Postings(
                {token: col for col, token in enumerate(vocab)},
                arrays["indptr"], arrays["rows"], arrays["tfs"], arrays["lengths"],
            )  # fmt: skip
        faiss_type = record["faiss"]
        # Made from the vectors (flat) or read from dense.faiss (checksummed above) when first searched.
        open_dense = None if faiss_type == FLAT_TYPE else partial(_read_dense, folder, int(record["n_passages"]))
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise IndexFormatError(f"index segment {folder} cannot be read ({exc}): {REBUILD}") from exc
    try:
        segment = Segment(
            folder.name, documents, passages, passage_vectors, unit_vectors, unit_offsets_of(passages),
            None, postings, faiss_type, folder, open_dense=open_dense,
        )  # fmt: skip
    except ValueError as exc:
        raise IndexFormatError(f"index segment {folder} cannot be read ({exc}): {REBUILD}") from exc
    _check_counts(record, segment, folder)
    return segment


def _read_dense(folder: Path, n_passages: int) -> Any:
    """A segment's stored FAISS index, which must hold one vector per passage.

    Raises:
        IndexFormatError: If it cannot be read or holds another count.
    """
    import faiss

    try:
        dense = faiss.read_index(str(folder / "dense.faiss"))
    except (OSError, RuntimeError) as exc:
        raise IndexFormatError(f"index segment {folder} cannot be read ({exc}): {REBUILD}") from exc
    if dense.ntotal != n_passages:
        raise IndexFormatError(f"index segment {folder} is inconsistent with its manifest: {REBUILD}")
    if hasattr(dense, "hnsw"):
        dense.hnsw.efSearch = HNSW_EF_SEARCH
    return dense


def _check_counts(record: dict[str, Any], segment: Segment, folder: Path) -> None:
    n = len(segment.passages)
    postings = segment.postings
    # The FAISS index's count is checked when it is read (``_read_dense``); a flat one is the vectors.
    expected = (record["n_documents"], record["n_passages"], n, record["n_units"], n, len(postings.vocab) + 1)
    found = (
        len(segment.documents), len(segment.passages), segment.passage_vectors.shape[0],
        segment.unit_vectors.shape[0], len(postings.lengths), len(postings.indptr),
    )  # fmt: skip
    consistent = (
        expected == found
        and segment.n_units == record["n_units"]
        and segment.passage_vectors.shape[1:] == (record["dim"],)
        and len(postings.rows) == len(postings.tfs) == int(postings.indptr[-1])
        and (not len(postings.rows) or 0 <= int(postings.rows.min()) <= int(postings.rows.max()) < n)
    )
    if not consistent:
        raise IndexFormatError(f"index segment {folder} is inconsistent with its manifest: {REBUILD}")


def load_index(
    index_dir: Path, *, model: str | None = None, previous: VectorIndex | None = None, search: bool = True
) -> VectorIndex:
    """Load the current commit, reusing the segments ``previous`` already holds.

    Args:
        index_dir: The index directory.
        model: Refuse an index built with another model.
        previous: A loaded view of this directory: its segments are not read again.
        search: Make every segment's FAISS index now, as a server needs before its first question
            (False for a build, which never searches: a flat index is a copy of the vectors).

    Raises:
        IndexMissingError: If there is no index.
        IndexFormatError: If the index is damaged or does not match this version or model.
    """
    commit = current_commit(index_dir)
    manifest = read_manifest(commit)
    if model is not None and manifest.model != model:
        raise IndexFormatError(
            f"index in {index_dir} was built with model {manifest.model!r}, not {model!r}: {REBUILD}"
        )
    checksums = _segment_checksums(commit)
    loaded = {s.name: s for s in previous.segments} if previous is not None else {}
    segments = [
        loaded.get(ref.name) or load_segment(index_dir / "segments" / ref.name, checksums.get(ref.name, ""))
        for ref in manifest.segments
    ]
    for segment in segments:
        if segment.passage_vectors.shape[1:] != (manifest.dim,):
            raise IndexFormatError(f"index segment {segment.name} has another dimension than its commit: {REBUILD}")
        if search:
            segment.searchable()
    return view_of(manifest, segments, commit, previous)
