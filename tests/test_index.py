"""Tests for ``qa.index``, ``qa.storage`` and ``qa.indexing``: round trip, skip, atomic swap, refusals, pruning."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from qa.build import build_index
from qa.embed import HashEmbedder
from qa.errors import CorpusError, IndexFormatError, IndexMissingError
from qa.index import VectorIndex
from qa.indexing import index_corpus
from qa.retrieve import retrieve
from qa.storage import KEEP_BUILDS, current_build, load_index, save_index, writer_lock
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


def builds_of(index_dir: Path) -> list[str]:
    return sorted(p.name for p in (index_dir / "builds").iterdir())


# --- round trip -----------------------------------------------------------------------------------


def test_save_and_load_round_trip(corpus_document: Document, tmp_path: Path) -> None:
    built = build_index([corpus_document], HashEmbedder())
    with writer_lock(tmp_path):
        path = save_index(built, tmp_path)
    loaded = load_index(tmp_path, model="hash-64")
    assert loaded.path == path == current_build(tmp_path)
    assert loaded.manifest == built.manifest
    assert loaded.documents == built.documents
    assert loaded.passages == built.passages
    assert np.array_equal(loaded.passage_vectors, built.passage_vectors)
    assert np.array_equal(loaded.unit_vectors, built.unit_vectors)
    assert np.array_equal(loaded.unit_offsets, built.unit_offsets)
    assert loaded.passage_vectors.dtype == np.float32
    assert loaded.idf == built.idf
    assert loaded.dense.ntotal == 16
    assert search_snapshot(loaded) == search_snapshot(built)


def test_manifest_records_what_the_build_depends_on(hash_index: VectorIndex) -> None:
    m = hash_index.manifest
    assert (m.model, m.dim, m.format, m.faiss) == ("hash-64", 64, 1, "IndexFlatIP")
    assert (m.n_documents, m.n_passages, m.n_units) == (1, 16, 27)
    assert m.settings == {"model": "hash-64", "chunker_version": 4, "tokenizer_version": 2, "max_chars": 800}
    assert sorted(m.files) == [
        "dense.faiss",
        "documents.jsonl",
        "lexical/data.csc.index.npy",
        "lexical/indices.csc.index.npy",
        "lexical/indptr.csc.index.npy",
        "lexical/params.index.json",
        "lexical/vocab.index.json",
        "passage_vectors.npy",
        "passages.jsonl",
        "unit_vectors.npy",
    ]
    assert all(len(digest) == 64 for digest in m.files.values())


def test_loaded_passages_keep_the_offset_invariant(hash_index: VectorIndex) -> None:
    for p in hash_index.passages:
        assert hash_index.documents[p.doc_id].text[p.start : p.end] == p.text


# --- rebuild or skip -----------------------------------------------------------------------------


def test_unchanged_corpus_and_settings_skip_the_rebuild(corpus_dir: Path, index_copy: Path) -> None:
    before = current_build(index_copy)
    report = index_corpus(corpus_dir, index_copy, embedder=HashEmbedder())
    assert (report.skipped, report.n_documents, report.n_passages, report.path) == (True, 1, 16, None)
    assert current_build(index_copy) == before


def test_force_rebuilds(corpus_dir: Path, index_copy: Path) -> None:
    before = current_build(index_copy)
    report = index_corpus(corpus_dir, index_copy, embedder=HashEmbedder(), force=True)
    assert not report.skipped
    assert report.path == current_build(index_copy) != before
    assert len(load_index(index_copy).passages) == 16


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
    (current_build(index_copy) / "passages.jsonl").write_text("", encoding="utf-8")
    report = index_corpus(corpus_dir, index_copy, embedder=HashEmbedder())
    assert not report.skipped
    assert len(load_index(index_copy).passages) == 16


def _fixed_clock(monkeypatch: pytest.MonkeyPatch, suffixes: list[str]) -> None:
    """Every build stamped in the same second, with the given random suffixes in turn."""
    import qa.storage

    moment = time.gmtime(4_070_908_800)  # 2099: after any real build here
    monkeypatch.setattr(qa.storage, "time", SimpleNamespace(gmtime=lambda: moment, strftime=time.strftime))
    names = iter(suffixes)
    monkeypatch.setattr(qa.storage, "secrets", SimpleNamespace(token_hex=lambda nbytes: next(names)))


def test_old_builds_are_pruned(corpus_dir: Path, index_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = index_copy / "builds" / "20000101T000000Z-000000.tmp"
    stale.mkdir()
    (stale / "partial.npy").write_bytes(b"half")
    original = current_build(index_copy).name
    _fixed_clock(monkeypatch, ["aaaaa1", "aaaaa2", "aaaaa3", "aaaaa4"])
    for _ in range(4):
        index_corpus(corpus_dir, index_copy, embedder=HashEmbedder(), force=True)
    assert KEEP_BUILDS == 2
    assert original not in builds_of(index_copy)
    assert builds_of(index_copy) == ["20990101T000000Z-aaaaa2", "20990101T000000Z-aaaaa3", "20990101T000000Z-aaaaa4"]
    assert current_build(index_copy).name == "20990101T000000Z-aaaaa4"
    assert not list(index_copy.glob("current.*.tmp"))


def test_prune_keeps_the_newest_builds_made_in_the_same_second(
    corpus_dir: Path, index_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: build names are a one-second stamp plus a random hex suffix, and storage.prune_builds
    took name order for age order. Builds made within one second (quick API uploads) were pruned at
    random: here the build just before the current one was deleted, though a reader that resolved
    the old link may still be loading it, and the oldest was kept."""
    _fixed_clock(monkeypatch, ["ffffff", "eeeeee", "dddddd", "cccccc"])
    for _ in range(4):
        index_corpus(corpus_dir, index_copy, embedder=HashEmbedder(), force=True)
    assert builds_of(index_copy) == ["20990101T000000Z-cccccc", "20990101T000000Z-dddddd", "20990101T000000Z-eeeeee"]


# --- refusals ------------------------------------------------------------------------------------


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError) as caught:
        load_index(tmp_path)
    assert str(caught.value) == f"no index in {tmp_path}: build one with `qa index --index-dir {tmp_path}`"


def test_other_model_is_refused(hash_index_dir: Path) -> None:
    build = current_build(hash_index_dir)
    with pytest.raises(IndexFormatError) as caught:
        load_index(hash_index_dir, model="other")
    assert str(caught.value) == f"index in {build} was built with model 'hash-64', not 'other': rebuild with `qa index`"


def _truncate(build: Path) -> str:
    path = build / "passage_vectors.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "index file passage_vectors.npy in {build} is damaged (checksum mismatch): rebuild with `qa index`"


def _flip_byte(build: Path) -> str:
    path = build / "dense.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "index file dense.faiss in {build} is damaged (checksum mismatch): rebuild with `qa index`"


def _delete(build: Path) -> str:
    (build / "unit_vectors.npy").unlink()
    return "index file unit_vectors.npy is missing from {build}: rebuild with `qa index`"


def _delete_lexical(build: Path) -> str:
    (build / "lexical" / "vocab.index.json").unlink()
    return "index file lexical/vocab.index.json is missing from {build}: rebuild with `qa index`"


def _extra(build: Path) -> str:
    (build / "lexical" / "notes.txt").write_text("left here\n")
    return "index file lexical/notes.txt in {build} is not in its manifest: rebuild with `qa index`"


def _manifest_json(build: Path) -> str:
    (build / "manifest.json").write_text("{not json")
    reason = "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    return "index manifest in {build} is damaged (" + reason + "): rebuild with `qa index`"


def _edit_manifest(build: Path, **fields: object) -> None:
    path = build / "manifest.json"
    record = json.loads(path.read_text())
    record.update(fields)
    path.write_text(json.dumps(record))


def _format(build: Path) -> str:
    _edit_manifest(build, format=2)
    return "index in {build} has format 2, this version reads 1: rebuild with `qa index`"


def _counts(build: Path) -> str:
    _edit_manifest(build, n_passages=15)
    return "index in {build} is inconsistent with its manifest: rebuild with `qa index`"


def _unknown_field(build: Path) -> str:
    _edit_manifest(build, surprise=True)
    reason = "Manifest.__init__() got an unexpected keyword argument 'surprise'"
    return "index manifest in {build} is damaged (" + reason + "): rebuild with `qa index`"


@pytest.mark.parametrize(
    "damage",
    [_truncate, _flip_byte, _delete, _delete_lexical, _extra, _manifest_json, _format, _counts, _unknown_field],
)
def test_damaged_index_is_refused_with_advice_to_rebuild(index_copy: Path, damage: Callable[[Path], str]) -> None:
    build = current_build(index_copy)
    expected = damage(build).format(build=build)
    with pytest.raises(IndexFormatError) as caught:
        load_index(index_copy)
    assert str(caught.value) == expected
    assert "rebuild" in str(caught.value)


def test_file_from_another_build_is_refused(index_copy: Path, tmp_path: Path) -> None:
    other_dir = tmp_path / "other-index"
    index_corpus(write_corpus(tmp_path / "other", files=2, paragraphs=3), other_dir, embedder=HashEmbedder())
    build = current_build(index_copy)
    shutil.copyfile(current_build(other_dir) / "passages.jsonl", build / "passages.jsonl")
    with pytest.raises(
        IndexFormatError, match=r"index file passages\.jsonl in .* is damaged \(checksum mismatch\): rebuild"
    ):
        load_index(index_copy)


def test_dangling_current_link_is_a_missing_index(index_copy: Path) -> None:
    shutil.rmtree(current_build(index_copy))
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
elif pause == "before-swap":  # the build is renamed and the new link made, but not yet swapped in
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
        if loaded.manifest.corpus_sha256 == old.manifest.corpus_sha256:
            assert search_snapshot(loaded) == expected
            outcomes.append("old")
        else:  # only if the build won the race: then it must be whole
            assert finished or delay > 0.3
            assert len(loaded.passages) == 3600
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
    # A rerun completes, swaps the new build in and clears what the killed one left behind.
    report = index_corpus(corpus, index_copy, embedder=HashEmbedder())
    assert not report.skipped
    assert sorted(load_index(index_copy).documents) == [f"doc{i:03d}.md" for i in range(5)]
    assert not [name for name in builds_of(index_copy) if name.endswith(".tmp")]
    assert not list(index_copy.glob("current.*.tmp"))
    assert os.path.realpath(index_copy / "current") == str(report.path)
