"""Damaged index files are refused before numpy or FAISS reads a byte of them.

Each damage to a segment (truncated, bytes flipped, a file missing, a manifest from another build, a
file from another build, ...) or to a commit (another model's, empty, naming a segment outside the
index or one that is missing) must be refused by ``load_index`` with a message that names the problem
and says to rebuild; by the CLI with exit code 1; by the server, whose /readyz answers 503 with that
message. A damaged commit made current while the server runs is not served: the previous good one
keeps answering. The segment damaged is the newest one the current commit names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from index_helpers import only_segment, segment_names
from reliability_helpers import QUESTIONS, answers, assert_problem, write_corpus

from qa.build import update_index
from qa.cli import main
from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.errors import IndexFormatError
from qa.indexing import index_corpus
from qa.ingest import parse_document
from qa.storage import load_index, save_index, writer_lock

Damage = Callable[[Path, Path, Path], str]  # (segment, segment of the same model, segment of another model)


def _commit_of(segment: Path) -> Path:
    return (segment.parents[1] / "current").resolve()


def _edit_commit(segment: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    commit = _commit_of(segment)
    record = json.loads(commit.read_text())
    edit(record)
    commit.write_text(json.dumps(record))


def _edit_manifest(segment: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a segment's manifest and record its new sha256 in the commit: damage that passes the commit's check."""
    path = segment / "manifest.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _edit_commit(segment, lambda c: [s.update(sha256=digest) for s in c["segments"] if s["name"] == segment.name])


def _truncate(name: str) -> Damage:
    def damage(build: Path, other: Path, foreign: Path) -> str:
        path = build / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return f"index file {name} in {build} is damaged (checksum mismatch)"

    return damage


def _flip(name: str, where: float = 0.5) -> Damage:
    def damage(build: Path, other: Path, foreign: Path) -> str:
        path = build / name
        data = bytearray(path.read_bytes())
        data[int(len(data) * where)] ^= 0x01  # one bit
        path.write_bytes(bytes(data))
        return f"index file {name} in {build} is damaged (checksum mismatch)"

    return damage


def _missing(name: str) -> Damage:
    def damage(build: Path, other: Path, foreign: Path) -> str:
        (build / name).unlink()
        return f"index file {name} is missing from {build}"

    return damage


def _from_other_build(name: str) -> Damage:
    def damage(build: Path, other: Path, foreign: Path) -> str:
        shutil.copyfile(other / name, build / name)
        return f"index file {name} in {build} is damaged (checksum mismatch)"

    return damage


def _linked_to_other_build(build: Path, other: Path, foreign: Path) -> str:
    (build / "passage_vectors.npy").unlink()
    (build / "passage_vectors.npy").symlink_to(other / "passage_vectors.npy")
    return f"index file passage_vectors.npy in {build} is damaged (checksum mismatch)"


def _manifest_of_other_build(build: Path, other: Path, foreign: Path) -> str:
    shutil.copyfile(other / "manifest.json", build / "manifest.json")
    return f"index segment {build} does not match its commit (checksum mismatch)"


def _resigned_manifest_of_other_build(build: Path, other: Path, foreign: Path) -> str:
    """Another segment's manifest, and a commit that vouches for it: the files still do not match."""
    _edit_manifest(build, lambda record: record.update(json.loads((other / "manifest.json").read_text())))
    return f"index file documents.jsonl in {build} is damaged (checksum mismatch)"  # the first file, by name


def _commit_of_other_model(build: Path, other: Path, foreign: Path) -> str:
    shutil.copyfile(_commit_of(foreign), _commit_of(build))
    return f"index in {build.parents[1]} was built with model 'hash-32', not 'hash-64'"


def _empty_manifest(build: Path, other: Path, foreign: Path) -> str:
    (build / "manifest.json").write_bytes(b"")
    return f"index segment {build} does not match its commit (checksum mismatch)"


def _empty_commit(build: Path, other: Path, foreign: Path) -> str:
    _commit_of(build).write_bytes(b"")
    return f"index commit {_commit_of(build)} is damaged (Expecting value: line 1 column 1 (char 0))"


def _commit_names_a_segment_outside(build: Path, other: Path, foreign: Path) -> str:
    commit = _commit_of(build)
    _edit_commit(build, lambda c: c["segments"][-1].update(name="../../../../../../etc"))
    return f"index commit {commit} is damaged (bad segment name '../../../../../../etc')"


def _commit_names_a_missing_segment(build: Path, other: Path, foreign: Path) -> str:
    shutil.rmtree(build)
    return f"index segment {build} is missing or unreadable"


def _manifest_names_outside_file(build: Path, other: Path, foreign: Path) -> str:
    _edit_manifest(build, lambda record: record["files"].update({"../../../../../../etc/passwd": "0" * 64}))
    return f"index file ../../../../../../etc/passwd is missing from {build}"


def _manifest_files(value: object) -> Damage:
    def damage(build: Path, other: Path, foreign: Path) -> str:
        _edit_manifest(build, lambda record: record.update(files=value))
        return f"index segment manifest in {build} is damaged"

    return damage


def _directory_for_file(build: Path, other: Path, foreign: Path) -> str:
    (build / "postings.npz").unlink()
    (build / "postings.npz").mkdir()
    return f"index file postings.npz is missing from {build}"


DAMAGES: dict[str, Damage] = {
    "truncated-vectors": _truncate("passage_vectors.npy"),
    "truncated-postings": _truncate("postings.npz"),
    "truncated-documents": _truncate("documents.jsonl"),
    "truncated-vocab": _truncate("postings_vocab.json"),
    "bit-flip-postings-header": _flip("postings.npz", 0.0),
    "bit-flip-postings": _flip("postings.npz"),
    "bit-flip-units": _flip("unit_vectors.npy", 0.9),
    "bit-flip-passages": _flip("passages.jsonl"),
    "bit-flip-vocab": _flip("postings_vocab.json"),
    "missing-postings": _missing("postings.npz"),
    "missing-units": _missing("unit_vectors.npy"),
    "missing-vocab": _missing("postings_vocab.json"),
    "postings-from-other-build": _from_other_build("postings.npz"),
    "passages-from-other-build": _from_other_build("passages.jsonl"),
    "vectors-linked-to-other-build": _linked_to_other_build,
    "manifest-of-other-build": _manifest_of_other_build,
    "manifest-of-other-build-vouched-for": _resigned_manifest_of_other_build,
    "commit-of-other-model": _commit_of_other_model,
    "empty-manifest": _empty_manifest,
    "empty-commit": _empty_commit,
    "commit-names-a-segment-outside": _commit_names_a_segment_outside,
    "commit-names-a-missing-segment": _commit_names_a_missing_segment,
    "manifest-names-a-file-outside": _manifest_names_outside_file,
    "directory-for-a-file": _directory_for_file,
    "manifest-files-null": _manifest_files(None),
    "manifest-files-a-list": _manifest_files(["postings.npz"]),
}
# Valid JSON whose "files" is not a map (null, a list) is refused like any other damage.
CASES = list(DAMAGES)


@pytest.fixture(scope="module")
def other_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The segment of another corpus's index with the same model, and of one with another model (hash-32)."""
    root = tmp_path_factory.mktemp("other-builds")
    corpus = write_corpus(root / "corpus", files=3, paragraphs=4)
    index_corpus(corpus, root / "same-model", embedder=HashEmbedder())
    index_corpus(corpus, root / "other-model", embedder=HashEmbedder(dim=32))
    return only_segment(root / "same-model"), only_segment(root / "other-model")


@pytest.fixture
def no_loading_before_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if numpy, FAISS or the JSONL reader touch an index file."""
    import faiss
    import numpy as np

    import qa.storage

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"an index file was loaded before verification: {args[:1]}")

    monkeypatch.setattr(np, "load", refuse)
    monkeypatch.setattr(faiss, "read_index", refuse)
    monkeypatch.setattr(qa.storage, "_read_jsonl", refuse)


def _damage(index_dir: Path, other_builds: tuple[Path, Path], name: str) -> str:
    segment = index_dir / "segments" / segment_names(index_dir)[-1]
    return DAMAGES[name](segment, *other_builds)


@pytest.mark.parametrize("name", CASES)
def test_damage_is_refused_before_any_load(
    name: str, index_copy: Path, other_builds: tuple[Path, Path], no_loading_before_verification: None
) -> None:
    fragment = _damage(index_copy, other_builds, name)
    with pytest.raises(IndexFormatError) as caught:
        load_index(index_copy, model="hash-64")
    assert str(caught.value).startswith(fragment)
    assert str(caught.value).endswith(": rebuild with `qa index`")


@pytest.mark.parametrize("name", CASES)
def test_cli_exits_1_on_damage(name: str, index_copy: Path, other_builds: tuple[Path, Path]) -> None:
    fragment = _damage(index_copy, other_builds, name)
    if name == "commit-of-other-model":  # `qa show` reads any model's index: the other index's segment is not here
        (foreign,) = segment_names(index_copy)
        fragment = f"index segment {index_copy / 'segments' / foreign} is missing or unreadable"
    result = CliRunner().invoke(main, ["show", "x.txt", "--index-dir", str(index_copy)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {fragment}") and result.stdout == ""


def test_cli_subprocess_exits_1_on_a_flipped_bit(index_copy: Path, other_builds: tuple[Path, Path]) -> None:
    fragment = _damage(index_copy, other_builds, "bit-flip-postings")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    qa = str(Path(sys.executable).with_name("qa"))
    command = [qa, "show", "immigration-data-sharing.txt", "--index-dir", str(index_copy)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: {fragment}: rebuild with `qa index`\n"


@pytest.fixture
def client_over(make_app: Callable[..., FastAPI]) -> Iterator[Callable[[], TestClient]]:
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(make_app(api_keys=["k"]))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("name", CASES)
def test_server_is_not_ready_on_damage_and_says_why(
    name: str,
    index_copy: Path,
    other_builds: tuple[Path, Path],
    client_over: Callable[[], TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anyone may call /readyz: it says the index is damaged and to rebuild; which file, and where, goes
    to the server log for the operator."""
    fragment = _damage(index_copy, other_builds, name)
    with caplog.at_level(logging.ERROR, logger="api.state"):
        client = client_over()
    body = assert_problem(client.get("/readyz"), 503)
    assert (
        body["detail"] == "the index is damaged or was built with another version or model: rebuild it with `qa index`"
    )
    assert str(index_copy) not in body["detail"]
    assert fragment in caplog.text
    assert_problem(client.post("/v1/ask", json={"question": "How many fusion centers?"}), 503, "is damaged")
    assert_problem(client.get("/v1/documents"), 503)
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("name", CASES)
def test_damaged_new_build_leaves_the_good_one_serving(
    name: str,
    index_copy: Path,
    other_builds: tuple[Path, Path],
    hash_engine: Engine,
    client_over: Callable[[], TestClient],
    figure: Callable[..., None],
) -> None:
    """A commit made current by another process (`qa index`, a worker) and damaged: never served."""
    client = client_over()
    expected = answers(hash_engine)
    embedder = HashEmbedder()
    with writer_lock(index_copy):
        base = load_index(index_copy, model=embedder.name)
        note = parse_document("note.md", b"# Note\n\nLlamas graze on the ridge.\n")
        save_index(update_index(base, embedder, add=[note]), index_copy)
    _damage(index_copy, other_builds, name)
    for _ in range(3):
        assert client.get("/readyz").json()["documents"] == 1
        asked = [client.post("/v1/ask", json={"question": q}).json() for q in QUESTIONS]
        assert [{k: v for k, v in a.items() if k != "took_ms"} for a in asked] == expected
    assert client.get("/v1/documents/note.md").status_code == 404
    # A good commit after it is served at once.
    with writer_lock(index_copy):
        save_index(update_index(base, embedder, add=[note]), index_copy)
    assert client.get("/readyz").json()["documents"] == 2
    figure("damaged_index", kinds=len(DAMAGES), checks_per_kind=4)
