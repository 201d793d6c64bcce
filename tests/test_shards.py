"""Search split over shards (``qa.shards``), without Ray: the shards are objects in this process.

What these tests pin: how segments are assigned to shards (exact assignments, the same in every
process that loads a commit); that searching every shard and merging gives exactly the hits and
answers of one process searching the whole index, for 1 to 4 shards, with tombstones, in every
mode; that a shard makes the FAISS indexes of its own segments only; that a request against a
commit a shard cannot load is refused (StaleCommit, a 503) rather than answered from another
commit; and that a shard that does not answer fails the search instead of leaving its share out.
And the single-machine path (CLI, app, engine) never imports Ray. Over Ray Serve, with real
replicas, the same is in ``tests/test_cluster.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corpus_helpers import CORPUS_QUESTIONS

from qa.build import build_index, empty_index, update_index
from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.index import VectorIndex
from qa.ingest import parse_document
from qa.records import answer_record
from qa.retrieve import LOCAL, MODES, retrieve
from qa.shards import STALE, Shard, ShardedSearch, ShardUnavailable, StaleCommit, assign, commit_name
from qa.storage import load_index, save_index
from qa.types import Document

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [*CORPUS_QUESTIONS, "Department of Motor Vehicles data", "memorandums of agreement signed nationwide"]


@pytest.fixture(scope="module")
def index_dir(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default corpus cut into seven documents: four in one segment, three in one each; two then deleted."""
    lines = (corpus_dir / "immigration-data-sharing.txt").read_text(encoding="utf-8").splitlines()
    size = -(-len(lines) // 8)
    documents: list[Document] = [
        parse_document(f"part-{i}.txt", "\n".join(lines[start : start + size]).encode())
        for i, start in enumerate(range(0, len(lines), size))
    ]
    index = empty_index("hash-64", 64, build_index(documents[:1], HashEmbedder()).manifest.settings)
    index = update_index(index, HashEmbedder(), add=documents[:4])  # one segment of four documents
    for doc in documents[4:]:
        index = update_index(index, HashEmbedder(), add=[doc])
    index = update_index(index, HashEmbedder(), remove=[documents[1].id, documents[5].id])  # a tombstone, a drop
    folder = tmp_path_factory.mktemp("sharded")
    save_index(index, folder)
    return folder


def _load(folder: Path) -> Any:
    return lambda previous: load_index(folder, previous=previous, search=False)


def _shards(folder: Path, n: int) -> list[Shard]:
    return [Shard(_load(folder), i, n) for i in range(n)]


def _sharded(shards: list[Shard]) -> ShardedSearch:
    return ShardedSearch(
        lambda commit, query, tokens, n, where: [s.search(commit, query, tokens, n, where) for s in shards]
    )


def _hits(index: VectorIndex, searcher: Any, where: Any = None) -> list[Any]:
    embedder = HashEmbedder()
    return [
        [
            (h.passage.id, h.score, h.dense_score, h.lexical_score)
            for h in retrieve(index, embedder.embed_queries([q])[0], q, k=8, mode=mode, searcher=searcher, where=where)
        ]
        for q in QUESTIONS
        for mode in MODES
    ]


def documents_of(index: VectorIndex) -> list[str]:
    return sorted(index.documents)


def _answers(engine: Engine) -> list[dict[str, Any]]:
    return [{k: v for k, v in answer_record(engine.ask(q)).items() if k != "took_ms"} for q in QUESTIONS]


def test_segments_go_largest_first_to_the_emptiest_shard() -> None:
    sizes = [("s1", 500), ("s2", 300), ("s3", 300), ("s4", 200), ("s5", 100)]
    assert assign(sizes, 2) == [frozenset({"s1", "s4"}), frozenset({"s2", "s3", "s5"})]
    assert assign(sizes, 3) == [frozenset({"s1"}), frozenset({"s2", "s4"}), frozenset({"s3", "s5"})]
    assert assign(sizes, 1) == [frozenset({"s1", "s2", "s3", "s4", "s5"})]
    # More shards than segments: the rest hold nothing. The input order does not matter.
    assert assign(list(reversed(sizes[:2])), 3) == [frozenset({"s1"}), frozenset({"s2"}), frozenset()]
    with pytest.raises(ValueError, match="at least 1"):
        assign(sizes, 0)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_shard_searched_and_merged_equals_one_process(index_dir: Path, n: int) -> None:
    index = load_index(index_dir)
    assert (
        len(documents_of(index)) == 5 and len(index.segments) == 3 and index.n_rows > index.n_passages
    )  # several segments, a tombstone
    shards = _shards(index_dir, n)
    assert _hits(index, _sharded(shards)) == _hits(index, LOCAL)
    # A filter travels to every shard: filtered, the merge still equals one process.
    some = Engine(index, HashEmbedder()).parse_filter({"document_id": {"in": documents_of(index)[:3]}})
    assert _hits(index, _sharded(shards), some) == _hits(index, LOCAL, some)
    local = Engine(index, HashEmbedder())
    assert _answers(Engine(index, HashEmbedder(), searcher=_sharded(shards))) == _answers(local)
    # Each shard made the FAISS indexes of its own segments and of no other.
    for shard in shards:
        (view, owned) = shard.views[commit_name(index)]
        assert {s.name for s in view.segments if s._dense is not None} == owned
    assert set().union(*(shard.views[commit_name(index)][1] for shard in shards)) == {s.name for s in index.segments}


def test_a_commit_a_shard_cannot_load_is_refused_not_answered(index_dir: Path) -> None:
    index = load_index(index_dir)
    shard = Shard(_load(index_dir), 0, 2)
    assert shard.search(commit_name(index), None, ["fusion"], 3)[1]  # the current commit: answered
    with pytest.raises(StaleCommit, match=STALE):
        shard.search("00000099.json", np.zeros(64, np.float32), None, 3)  # a commit never made
    assert StaleCommit.status == 503


def test_a_shard_that_does_not_answer_fails_the_search(index_dir: Path) -> None:
    index = load_index(index_dir)

    def one_missing(commit: str, query: Any, tokens: Any, n: int, where: Any) -> list[Any]:
        raise ShardUnavailable("shard 1 of the index is not answering; try again shortly")

    engine = Engine(index, HashEmbedder(), searcher=ShardedSearch(one_missing))
    with pytest.raises(ShardUnavailable, match="shard 1"):
        engine.ask(QUESTIONS[0])


def test_an_index_not_loaded_from_disk_cannot_be_sharded() -> None:
    doc = parse_document("a.txt", b"Fusion centers share data.\n")
    with pytest.raises(ShardUnavailable, match="loaded from disk"):
        commit_name(build_index([doc], HashEmbedder()))


def test_a_shard_follows_new_commits_and_keeps_the_one_before(index_dir: Path, tmp_path: Path) -> None:
    """A write makes a new commit: the shard loads it when asked for it, and still answers the one before
    (askers that have not moved yet), but not the one before that."""
    import shutil

    folder = tmp_path / "index"
    shutil.copytree(index_dir, folder, symlinks=True)
    first = load_index(folder)
    shard = Shard(_load(folder), 0, 1)
    assert shard.search(commit_name(first), None, ["harbour"], 3) == ([], [])
    names = [commit_name(first)]
    for i in range(2):
        doc = parse_document(f"harbour-{i}.txt", f"The harbour {i} shares manifests with customs.\n".encode())
        save_index(update_index(load_index(folder), HashEmbedder(), add=[doc]), folder)
        names.append(commit_name(load_index(folder)))
        newest = load_index(folder)
        found = shard.search(names[-1], None, ["harbour"], 3)[1]
        assert sorted(newest.passages[row].doc_id for row, _ in found) == [f"harbour-{j}.txt" for j in range(i + 1)]
    assert list(shard.views) == names[1:]  # the newest two
    assert shard.search(names[1], None, ["harbour"], 3)[1]  # the one before: still answered
    with pytest.raises(StaleCommit):
        shard.search(names[0], None, ["harbour"], 3)


def test_the_single_machine_path_never_imports_ray(tmp_path: Path) -> None:
    """Building, loading and answering through the CLI and the app leave ``ray`` out of sys.modules."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from fastapi.testclient import TestClient\n"
        "from api.main import create_app\n"
        "from qa.cli import main\n"
        "from qa.config import Settings\n"
        "from qa.embed import HashEmbedder\n"
        "from qa.engine import Engine\n"
        "from qa.indexing import index_corpus\n"
        "from qa.storage import load_index\n"
        f"index_corpus(Path({str(ROOT / 'corpus')!r}), Path({str(tmp_path)!r}), embedder=HashEmbedder())\n"
        f"engine = Engine(load_index(Path({str(tmp_path)!r})), HashEmbedder())\n"
        "engine.ask('How many fusion centers are there?')\n"
        f"app = create_app(Settings(index_dir=Path({str(tmp_path)!r})), engine=engine)\n"
        "with TestClient(app) as client:\n"
        "    assert client.get('/v1/ask', params={'q': 'fusion centers'}).status_code == 200\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
