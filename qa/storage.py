"""The index on disk: plain files, checksummed, swapped in atomically.

Layout::

    index/current -> builds/<stamp>          # a symlink, replaced with os.replace
    index/builds/<stamp>/manifest.json       # format, model, counts, sha256 of every file
                         documents.jsonl     # id, title, format, text, blocks
                         passages.jsonl      # id, document, section path, offsets, units
                         passage_vectors.npy # float32 (n_passages, dim), L2-normalised
                         unit_vectors.npy    # float32 (n_units, dim): sentences, items, rows
                         dense.faiss         # FAISS index over passage_vectors
                         lexical/            # bm25s index (numpy + JSON, no pickle)

A build is written to ``builds/<stamp>.tmp``, every file fsynced, then
renamed and the ``current`` link swapped, so a reader sees the old build or
the new one and never a half-written one. Loading verifies the sha256 of
every file before numpy, FAISS or bm25s reads a byte of it: FAISS's reader is
not safe on untrusted input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexFormatError, IndexMissingError
from qa.files import fsync_dir, fsync_tree, sha256_file
from qa.index import (
    FORMAT_VERSION,
    HNSW_EF_SEARCH,
    FloatArray,
    Manifest,
    VectorIndex,
    idf_of,
    unit_offsets_of,
)
from qa.types import Document, Passage, Span, document_from_record, document_record

# Builds kept besides the current one, so a reader that resolved the old link can finish loading.
KEEP_BUILDS = 2


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


def write_build(index: VectorIndex, build_dir: Path) -> Manifest:
    """Write every file of an index into an empty directory and return its manifest."""
    import faiss

    build_dir.mkdir(parents=True)
    _write_jsonl(build_dir / "documents.jsonl", (document_record(d) for d in index.documents.values()))
    _write_jsonl(build_dir / "passages.jsonl", (_passage_record(p) for p in index.passages))
    np.save(build_dir / "passage_vectors.npy", index.passage_vectors, allow_pickle=False)
    np.save(build_dir / "unit_vectors.npy", index.unit_vectors, allow_pickle=False)
    faiss.write_index(index.dense, str(build_dir / "dense.faiss"))
    index.lexical.save(str(build_dir / "lexical"))
    files = {
        path.relative_to(build_dir).as_posix(): sha256_file(path)
        for path in sorted(build_dir.rglob("*"))
        if path.is_file()
    }
    manifest = dataclasses.replace(
        index.manifest, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), files=files
    )
    (build_dir / "manifest.json").write_text(json.dumps(manifest_record(manifest), indent=2) + "\n", encoding="utf-8")
    return manifest


def manifest_record(manifest: Manifest) -> dict[str, Any]:
    """The manifest as JSON-ready data."""
    return dataclasses.asdict(manifest)


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index directory's writer lock: one build or update at a time."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_index(index: VectorIndex, index_dir: Path) -> Path:
    """Write a build and make it current atomically; the caller holds ``writer_lock``.

    The three steps apart (:func:`stage_build`, :func:`make_current`, :func:`prune_builds`) let a server
    swap its engine in at the moment ``current`` moves, without holding readers while the files are written.

    Returns:
        The directory of the new build.
    """
    build = stage_build(index, index_dir)
    make_current(index_dir, build)
    prune_builds(index_dir, keep=build)
    return build


def stage_build(index: VectorIndex, index_dir: Path) -> Path:
    """Write a whole, fsynced build under ``builds/``; readers do not see it until :func:`make_current`.

    Returns:
        The directory of the new build (``index.path`` and ``index.manifest`` are set to it).
    """
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
    tmp = builds / f"{stamp}.tmp"
    index.manifest = write_build(index, tmp)
    fsync_tree(tmp)
    final = builds / stamp
    os.rename(tmp, final)
    fsync_dir(builds)
    index.path = final
    return final


def make_current(index_dir: Path, build: Path) -> None:
    """Point ``current`` at ``build`` in one atomic rename, durably."""
    link_tmp = index_dir / f"current.{build.name}.tmp"
    os.symlink(Path("builds") / build.name, link_tmp)
    os.replace(link_tmp, index_dir / "current")
    fsync_dir(index_dir)


def prune_builds(index_dir: Path, *, keep: Path) -> None:
    """Delete unfinished builds and all but the newest KEEP_BUILDS finished ones."""
    # Oldest first by modification time: names made within one second do not sort by age.
    builds = sorted(
        (p for p in (index_dir / "builds").iterdir() if p.is_dir()), key=lambda p: (p.stat().st_mtime_ns, p.name)
    )
    finished = [p for p in builds if not p.name.endswith(".tmp") and p != keep]
    stale = [p for p in builds if p.name.endswith(".tmp")] + finished[: max(0, len(finished) - KEEP_BUILDS)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    for link in index_dir.glob("current.*.tmp"):
        link.unlink(missing_ok=True)


# ---- reading ---------------------------------------------------------------------------


def current_build(index_dir: Path) -> Path:
    """The directory of the current build.

    Raises:
        IndexMissingError: If there is no built index in ``index_dir``.
    """
    link = index_dir / "current"
    try:
        target = link.resolve(strict=False) if link.is_symlink() else link
        found = (target / "manifest.json").is_file()
    except (OSError, RuntimeError):  # a link loop, or an unreadable directory
        found = False
    if not found:
        raise IndexMissingError(f"no index in {index_dir}: build one with `qa index --index-dir {index_dir}`")
    return target


def read_manifest(build_dir: Path) -> Manifest:
    """Parse a build's manifest.

    Raises:
        IndexFormatError: If it is not valid or has another format version.
    """
    try:
        record = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))
        manifest = Manifest(**record)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexFormatError(f"index manifest in {build_dir} is damaged ({exc}): rebuild with `qa index`") from exc
    files = manifest.files
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise IndexFormatError(
            f"index manifest in {build_dir} is damaged (its file list is not a map of names to sha256): "
            "rebuild with `qa index`"
        )
    if manifest.format != FORMAT_VERSION:
        raise IndexFormatError(
            f"index in {build_dir} has format {manifest.format}, this version reads {FORMAT_VERSION}: "
            "rebuild with `qa index`"
        )
    return manifest


def verify_build(build_dir: Path, manifest: Manifest) -> None:
    """Check that the build holds exactly the manifest's files with their sha256.

    Raises:
        IndexFormatError: Naming the first missing, extra or altered file.
    """
    present = {p.relative_to(build_dir).as_posix() for p in build_dir.rglob("*") if p.is_file()} - {"manifest.json"}
    for name in sorted(set(manifest.files) | present):
        if name not in present:
            raise IndexFormatError(f"index file {name} is missing from {build_dir}: rebuild with `qa index`")
        if name not in manifest.files:
            raise IndexFormatError(f"index file {name} in {build_dir} is not in its manifest: rebuild with `qa index`")
        if sha256_file(build_dir / name) != manifest.files[name]:
            raise IndexFormatError(
                f"index file {name} in {build_dir} is damaged (checksum mismatch): rebuild with `qa index`"
            )


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


def load_index(index_dir: Path, *, model: str | None = None) -> VectorIndex:
    """Load the current build after verifying it.

    Args:
        index_dir: The index directory (holding ``current``).
        model: The embedding model the caller will query with; refused if the build used another.

    Raises:
        IndexMissingError: If there is no index.
        IndexFormatError: If the index is damaged or does not match this version or model.
    """
    import bm25s
    import faiss

    build_dir = current_build(index_dir)
    manifest = read_manifest(build_dir)
    if model is not None and manifest.model != model:
        raise IndexFormatError(
            f"index in {build_dir} was built with model {manifest.model!r}, not {model!r}: rebuild with `qa index`"
        )
    verify_build(build_dir, manifest)
    try:
        documents = {d.id: d for d in map(document_from_record, _read_jsonl(build_dir / "documents.jsonl"))}
        passages = [_passage(r, documents) for r in _read_jsonl(build_dir / "passages.jsonl")]
        passage_vectors = np.load(build_dir / "passage_vectors.npy", mmap_mode="r", allow_pickle=False)
        unit_vectors = np.load(build_dir / "unit_vectors.npy", mmap_mode="r", allow_pickle=False)
        dense = faiss.read_index(str(build_dir / "dense.faiss"))
        lexical = bm25s.BM25.load(str(build_dir / "lexical"))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexFormatError(f"index in {build_dir} cannot be read ({exc}): rebuild with `qa index`") from exc
    _check_counts(manifest, documents, passages, passage_vectors, unit_vectors, dense, build_dir)
    if hasattr(dense, "hnsw"):
        dense.hnsw.efSearch = HNSW_EF_SEARCH
    return VectorIndex(
        manifest, documents, passages, passage_vectors, unit_vectors, unit_offsets_of(passages),
        dense, lexical, idf_of(lexical, len(passages)), build_dir,
    )  # fmt: skip


def _check_counts(
    manifest: Manifest,
    documents: dict[str, Document],
    passages: list[Passage],
    passage_vectors: FloatArray,
    unit_vectors: FloatArray,
    dense: Any,
    build_dir: Path,
) -> None:
    n_units = sum(len(p.units) for p in passages)
    expected = (manifest.n_documents, manifest.n_passages, manifest.n_passages, manifest.n_units, manifest.n_passages)
    found = (len(documents), len(passages), passage_vectors.shape[0], unit_vectors.shape[0], dense.ntotal)
    if expected != found or n_units != manifest.n_units or passage_vectors.shape[1:] != (manifest.dim,):
        raise IndexFormatError(f"index in {build_dir} is inconsistent with its manifest: rebuild with `qa index`")
