"""Tests for ``qa.index``, ``qa.storage`` and ``qa.indexing``: round trip, skip, atomic swap, refusals, pruning.

The segment writes, deletes, merges and resumed builds are in ``test_segments.py``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from index_helpers import RecordingEmbedder, only_segment, segments_on_disk

from qa.build import build_index
from qa.embed import HashEmbedder
from qa.errors import CorpusError, IndexFormatError, IndexMissingError
from qa.index import VectorIndex
from qa.indexing import index_corpus
from qa.retrieve import retrieve
from qa.storage import KEEP_COMMITS, current_commit, load_index, save_index, writer_lock
from qa.types import Document

QUERIES = ["How many agencies participate in Secure Communities?", "fusion centers New York", "topic3 item7"]


def search_snapshot(index: VectorIndex) -> list[list[tuple[str, float]]]:
    """Passage ids and scores of a few hybrid searches: equal snapshots mean the same index behaviour."""
    embedder = HashEmbedder()
    return [
        [(hit.passage.id, round(hit.score, 9)) for hit in retrieve(index, embedder.embed_queries([q])[0], q, k=5)]
        for q in QUERIES
    ]


def write_corpus(root: Path, files: int, paragraphs: int) -> Path:
    """A generated Markdown corpus: ``files`` documents of ``paragraphs`` two-sentence paragraphs."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        body = "\n\n".join(
            f"Paragraph {j} of file {i} is about topic{i % 17} and item{j}. It also names word{i * 7 + j}."
            for j in range(paragraphs)
        )
        (root / f"doc{i:03d}.md").write_text(f"# Document {i}\n\n## Part\n\n{body}\n", encoding="utf-8")
    return root


def commits_of(index_dir: Path) -> list[str]:
    return sorted(p.name for p in (index_dir / "commits").iterdir())


# --- round trip -----------------------------------------------------------------------------------


def test_save_and_load_round_trip(corpus_document: Document, tmp_path: Path) -> None:
    built = build_index([corpus_document], HashEmbedder())
    with writer_lock(tmp_path):
        path = save_index(built, tmp_path)
    loaded = load_index(tmp_path, model="hash-64")
    assert loaded.path == path == current_commit(tmp_path)
    assert loaded.manifest == built.manifest
    assert loaded.manifest.generation == 1
    assert loaded.documents == built.documents
    assert loaded.passages == built.passages
    assert np.array_equal(loaded.passage_vectors, built.passage_vectors)
    assert [loaded.unit_vectors_of(i).tolist() for i in range(16)] == [
        built.unit_vectors_of(i).tolist() for i in range(16)
    ]
    assert np.asarray(loaded.passage_vectors).dtype == np.float32
    assert loaded.idf == built.idf
    assert loaded.segments[0].dense.ntotal == 16
    assert search_snapshot(loaded) == search_snapshot(built)


def test_manifest_records_what_the_build_depends_on(hash_index: VectorIndex) -> None:
    m = hash_index.manifest
    assert (m.model, m.dim, m.format, m.generation) == ("hash-64", 64, 2, 1)
    assert (m.n_documents, m.n_passages, m.n_units) == (1, 16, 27)
    assert m.settings == {"model": "hash-64", "chunker_version": 5, "tokenizer_version": 3, "max_chars": 800}
    (ref,) = m.segments
    assert ref.deleted == frozenset() and ref.name == hash_index.segments[0].name
    commit = json.loads(hash_index.path.read_text())  # type: ignore[union-attr]  # a loaded index has its path
    (segment,) = commit["segments"]
    segment_dir = hash_index.path.parents[1] / "segments" / ref.name  # type: ignore[union-attr]
    assert segment["sha256"] == hashlib.sha256((segment_dir / "manifest.json").read_bytes()).hexdigest()
    record = json.loads((segment_dir / "manifest.json").read_text())
    assert (record["faiss"], record["n_passages"], record["n_units"], record["format"]) == ("IndexFlatIP", 16, 27, 2)
    # A flat index is the vectors themselves: no dense.faiss, each vector stored once.
    assert sorted(record["files"]) == [
        "documents.jsonl",
        "passage_vectors.npy",
        "passages.jsonl",
        "postings.npz",
        "postings_vocab.json",
        "unit_vectors.npy",
    ]
    assert all(len(digest) == 64 for digest in record["files"].values())


def test_loaded_passages_keep_the_offset_invariant(hash_index: VectorIndex) -> None:
    for p in hash_index.passages:
        assert hash_index.documents[p.doc_id].text[p.start : p.end] == p.text


# --- rebuild or skip -----------------------------------------------------------------------------


def test_unchanged_corpus_and_settings_skip_the_rebuild(corpus_dir: Path, index_copy: Path) -> None:
    before = current_commit(index_copy)
    report = index_corpus(corpus_dir, index_copy, embedder=HashEmbedder())
    assert (report.skipped, report.n_documents, report.n_passages, report.path) == (True, 1, 16, None)
    assert current_commit(index_copy) == before


def test_force_rebuilds(corpus_dir: Path, index_copy: Path) -> None:
    before = current_commit(index_copy)
    report = index_corpus(corpus_dir, index_copy, embedder=HashEmbedder(), force=True)
    assert not report.skipped
    assert report.path == current_commit(index_copy) != before
    assert load_index(index_copy).n_passages == 16


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"max_chars": 400}, id="max_chars"),
        pytest.param({"embedder": HashEmbedder(dim=32)}, id="model"),
    ],
)
def test_changed_settings_rebuild(corpus_dir: Path, index_copy: Path, change: dict[str, object]) -> None:
    kwargs: dict[str, object] = {"embedder": HashEmbedder(), **change}
    report = index_corpus(corpus_dir, index_copy, **kwargs)  # type: ignore[arg-type]  # kwargs built per case
    assert not report.skipped


def test_changed_corpus_rebuilds_and_reports_bad_files(corpus_dir: Path, index_copy: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    (corpus / "extra.md").write_text("# Extra\n\n## Notes\n\nA new document about zeppelins.\n", encoding="utf-8")
    (corpus / "broken.txt").write_bytes(b"\xff\xfe bad")
    report = index_corpus(corpus, index_copy, embedder=HashEmbedder())
    assert (report.skipped, report.n_documents, report.n_passages) == (False, 2, 17)
    assert [p.document_id for p in report.problems] == ["broken.txt"]
    assert sorted(load_index(index_copy).documents) == ["extra.md", "immigration-data-sharing.txt"]


def test_corpus_without_readable_documents_is_an_error(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"no readable documents in .*corpus"):
        index_corpus(corpus, tmp_path / "index", embedder=HashEmbedder())
    assert not (tmp_path / "index" / "current").exists()


def test_damaged_index_is_rebuilt_not_skipped(corpus_dir: Path, index_copy: Path) -> None:
    """Regression: indexing._up_to_date trusted the manifest without verify_build, so after a file of
    the current build was damaged, `qa index` said "up to date" while load_index kept refusing the
    index with "rebuild with `qa index`": advice that could not work without --force."""
    (only_segment(index_copy) / "passages.jsonl").write_text("", encoding="utf-8")
    report = index_corpus(corpus_dir, index_copy, embedder=HashEmbedder())
    assert not report.skipped
    assert load_index(index_copy).n_passages == 16


def test_old_commits_and_the_segments_only_they_name_are_pruned(corpus_dir: Path, index_copy: Path) -> None:
    stale = index_copy / "segments" / "20000101T000000Z-00000000.tmp"
    stale.mkdir()
    (stale / "partial.npy").write_bytes(b"half")
    original = only_segment(index_copy).name
    names = []
    for _ in range(4):
        index_corpus(corpus_dir, index_copy, embedder=HashEmbedder(), force=True)
        names.append(only_segment(index_copy).name)
    assert KEEP_COMMITS == 2
    # The current commit and the two before it stay (a reader may be loading them), with their segments.
    assert commits_of(index_copy) == ["00000003.json", "00000004.json", "00000005.json"]
    assert segments_on_disk(index_copy) == sorted(names[1:])
    assert original not in segments_on_disk(index_copy)
    assert current_commit(index_copy).name == "00000005.json"
    assert not list(index_copy.glob("current.*.tmp"))


# --- refusals ------------------------------------------------------------------------------------


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError) as caught:
        load_index(tmp_path)
    assert str(caught.value) == f"no index in {tmp_path}: build one with `qa index --index-dir {tmp_path}`"


def test_other_model_is_refused(hash_index_dir: Path) -> None:
    with pytest.raises(IndexFormatError) as caught:
        load_index(hash_index_dir, model="other")
    expected = f"index in {hash_index_dir} was built with model 'hash-64', not 'other': rebuild with `qa index`"
    assert str(caught.value) == expected


def _truncate(build: Path) -> str:
    path = build / "passage_vectors.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "index file passage_vectors.npy in {build} is damaged (checksum mismatch): rebuild with `qa index`"


def _flip_byte(build: Path) -> str:
    path = build / "postings.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "index file postings.npz in {build} is damaged (checksum mismatch): rebuild with `qa index`"


def _delete(build: Path) -> str:
    (build / "unit_vectors.npy").unlink()
    return "index file unit_vectors.npy is missing from {build}: rebuild with `qa index`"


def _delete_lexical(build: Path) -> str:
    (build / "postings_vocab.json").unlink()
    return "index file postings_vocab.json is missing from {build}: rebuild with `qa index`"


def _extra(build: Path) -> str:
    (build / "notes.txt").write_text("left here\n")
    return "index file notes.txt in {build} is not in its manifest: rebuild with `qa index`"


def _manifest_json(build: Path) -> str:
    (build / "manifest.json").write_text("{not json")
    return "index segment {build} does not match its commit (checksum mismatch): rebuild with `qa index`"


def _edit_manifest(build: Path, **fields: object) -> None:
    """Edit a segment's manifest and record its new sha256 in the commit: damage that passes the commit's check."""
    path = build / "manifest.json"
    record = json.loads(path.read_text())
    record.update(fields)
    path.write_text(json.dumps(record))
    commit = build.parents[1] / "current"
    data = json.loads(commit.read_text())
    data["segments"][0]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    commit.resolve().write_text(json.dumps(data))


def _format(build: Path) -> str:
    _edit_manifest(build, format=3)
    return "index segment manifest in {build} is damaged (format 3, this version reads 2): rebuild with `qa index`"


def _counts(build: Path) -> str:
    _edit_manifest(build, n_passages=15)
    return "index segment {build} is inconsistent with its manifest: rebuild with `qa index`"


def _commit_format(build: Path) -> str:
    commit = (build.parents[1] / "current").resolve()
    data = json.loads(commit.read_text())
    data["format"] = 1
    commit.write_text(json.dumps(data))
    return f"index commit {commit} has format 1, this version reads 2: rebuild with `qa index`"


def _unknown_field(build: Path) -> str:
    commit = (build.parents[1] / "current").resolve()
    data = json.loads(commit.read_text())
    data["surprise"] = True
    commit.write_text(json.dumps(data))
    reason = "Manifest.__init__() got an unexpected keyword argument 'surprise'"
    return f"index commit {commit} is damaged ({reason}): rebuild with `qa index`"


@pytest.mark.parametrize(
    "damage",
    [
        _truncate, _flip_byte, _delete, _delete_lexical, _extra, _manifest_json, _format, _counts,
        _commit_format, _unknown_field,
    ],
)  # fmt: skip
def test_damaged_index_is_refused_with_advice_to_rebuild(index_copy: Path, damage: Callable[[Path], str]) -> None:
    build = only_segment(index_copy)
    expected = damage(build).format(build=build)
    with pytest.raises(IndexFormatError) as caught:
        load_index(index_copy)
    assert str(caught.value) == expected
    assert "rebuild" in str(caught.value)


def _format_1_build(index: VectorIndex, index_dir: Path) -> Path:
    """An index of format 1 as the version before segments wrote it: one build, ``current`` -> its directory."""
    from qa.storage import _passage_record, _write_jsonl
    from qa.types import document_record

    build = index_dir / "builds" / "20261101T000000Z-abcdef"
    build.mkdir(parents=True)
    _write_jsonl(build / "documents.jsonl", (document_record(d) for d in index.documents.values()))
    _write_jsonl(build / "passages.jsonl", (_passage_record(p) for p in index.passages))
    np.save(build / "passage_vectors.npy", np.asarray(index.passage_vectors), allow_pickle=False)
    units = np.concatenate([index.unit_vectors_of(r) for r in range(index.n_rows)])
    np.save(build / "unit_vectors.npy", units, allow_pickle=False)
    (build / "dense.faiss").write_bytes(b"a FAISS index")
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in build.iterdir()}
    m = index.manifest
    record = {
        "model": m.model, "dim": m.dim, "corpus_sha256": "0" * 64, "settings": m.settings, "n_documents": 1,
        "n_passages": m.n_passages, "n_units": m.n_units, "faiss": "IndexFlatIP", "format": 1, "files": files,
    }  # fmt: skip
    (build / "manifest.json").write_text(json.dumps(record))
    os.symlink(Path("builds") / build.name, index_dir / "current")
    return build


def test_an_index_of_the_format_before_segments_is_refused_then_converted(
    corpus_dir: Path, hash_index: VectorIndex, tmp_path: Path
) -> None:
    """Format 1 was one whole build under builds/; `qa index` converts it once, keeping its vectors."""
    index_dir = tmp_path / "index"
    _format_1_build(hash_index, index_dir)
    with pytest.raises(IndexFormatError) as caught:
        load_index(index_dir)
    assert str(caught.value) == (
        f"index in {index_dir} has format 1 (one whole build); this version reads format 2 (segments): "
        "run `qa index` to convert it (its vectors are kept)"
    )
    embedder = RecordingEmbedder()
    report = index_corpus(corpus_dir, index_dir, embedder=embedder)
    assert report.skipped and embedder.embedded == []  # converted, and then nothing had changed
    converted = load_index(index_dir)
    assert not (index_dir / "builds").exists()
    assert converted.passages == hash_index.passages
    assert np.array_equal(np.asarray(converted.passage_vectors), np.asarray(hash_index.passage_vectors))
    assert search_snapshot(converted) == search_snapshot(hash_index)


def test_file_from_another_build_is_refused(index_copy: Path, tmp_path: Path) -> None:
    other_dir = tmp_path / "other-index"
    index_corpus(write_corpus(tmp_path / "other", files=2, paragraphs=3), other_dir, embedder=HashEmbedder())
    build = only_segment(index_copy)
    shutil.copyfile(only_segment(other_dir) / "passages.jsonl", build / "passages.jsonl")
    with pytest.raises(
        IndexFormatError, match=r"index file passages\.jsonl in .* is damaged \(checksum mismatch\): rebuild"
    ):
        load_index(index_copy)


def test_dangling_current_link_is_a_missing_index(index_copy: Path) -> None:
    current_commit(index_copy).unlink()
    with pytest.raises(IndexMissingError, match="qa index"):
        load_index(index_copy)


# --- atomic swap: a killed build leaves the previous index serving ------------------------------

# Runs index_corpus with HashEmbedder; PAUSE names a point where it prints "paused" and waits to be killed.
BUILD_SCRIPT = """
import os, sys, time
from pathlib import Path
import numpy as np
from qa.embed import HashEmbedder
from qa.indexing import index_corpus

corpus, index_dir, pause = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def pausing(real):
    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        print("paused", flush=True)
        time.sleep(120)
        return result
    return wrapper

if pause == "mid-write":  # after the first .npy of the new build is written
    np.save = pausing(np.save)
elif pause == "before-swap":  # the segment and the commit are written, the new link made, but not swapped in
    os.symlink = pausing(os.symlink)
index_corpus(corpus, index_dir, embedder=HashEmbedder(), force=True)
print("done", flush=True)
"""


def start_build(corpus: Path, index_dir: Path, pause: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(corpus), str(index_dir), pause],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 files, 3,600 passages: a HashEmbedder build takes a few seconds on 2 cores."""
    return write_corpus(tmp_path_factory.mktemp("big-corpus"), files=300, paragraphs=12)


@pytest.mark.slow
def test_build_killed_at_any_time_leaves_the_previous_index(big_corpus: Path, index_copy: Path) -> None:
    old = load_index(index_copy)
    expected = search_snapshot(old)
    outcomes = []
    for delay in (0.3, 0.8, 1.5):
        process = start_build(big_corpus, index_copy, "none")
        time.sleep(delay)
        finished = process.poll() is not None
        kill(process)
        loaded = load_index(index_copy)
        if loaded.documents == old.documents:
            assert search_snapshot(loaded) == expected
            outcomes.append("old")
        else:  # only if the build won the race: then it must be whole
            assert finished or delay > 0.3
            assert loaded.n_passages == 3600
            outcomes.append("new")
    assert outcomes[0] == "old"


@pytest.mark.parametrize("pause", ["mid-write", "before-swap"])
def test_build_killed_while_writing_leaves_the_previous_index(pause: str, index_copy: Path, tmp_path: Path) -> None:
    old = load_index(index_copy)
    corpus = write_corpus(tmp_path / "new-corpus", files=5, paragraphs=4)
    process = start_build(corpus, index_copy, pause)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "paused"
    kill(process)
    loaded = load_index(index_copy)
    assert loaded.path == old.path
    assert search_snapshot(loaded) == search_snapshot(old)
    # A rerun completes, swaps the new commit in and clears what the killed one left behind.
    report = index_corpus(corpus, index_copy, embedder=HashEmbedder())
    assert not report.skipped
    assert sorted(load_index(index_copy).documents) == [f"doc{i:03d}.md" for i in range(5)]
    assert not [name for name in segments_on_disk(index_copy) if name.endswith(".tmp")]
    assert not list(index_copy.glob("current.*.tmp"))
    assert os.path.realpath(index_copy / "current") == str(report.path)
