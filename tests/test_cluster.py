"""On a real multi-node Ray cluster on this machine: ``qa index --ray`` and ``qa serve --ray``.

What these tests pin:

* an index built on a two-node cluster (parsing and chunking as Ray tasks, embedding in a Ray Data
  actor pool) equals the local build: documents, passages (ids, offsets, sections), segments, and
  vectors within 1e-5; also when an embedding actor is killed halfway (its batches are retried);
* ``qa serve --ray`` with 2 shards and 2 answer replicas answers the gold set and XQuAD dev exactly
  as one process answers them over the same multi-segment index (quote, offsets, confidence), and
  nothing of the cluster listens beyond 127.0.0.1;
* a killed shard replica costs 503s while Serve replaces it, never a wrong or partial answer, and
  the service is whole again within 30 s;
* a document written through one answer replica is quoted by every replica, and gone once deleted.

The cluster is two nodes of one CPU each (``ray.cluster_utils.Cluster``), started once for the
module and shut down at its end, also when a test fails. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from http_helpers import free_port

import qa.indexing
from qa.build import build_index, empty_index, update_index
from qa.config import Settings
from qa.engine import Engine, engine_of
from qa.gold import load_squad
from qa.indexing import index_corpus
from qa.ingest import parse_document
from qa.records import answer_record
from qa.storage import load_index, save_index
from reliability.common import Server, stop_server, wait_ready

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "xquad-en-dev" / "xquad-en-dev.json"
ROOT = Path(__file__).resolve().parents[1]
WRITE_KEY = "cluster-test-key"


# Ray binds to the machine's address unless it runs as on a laptop: then every node, the GCS and the
# Serve proxy listen on 127.0.0.1 only. Read when ray is imported, hence set first (children inherit it).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two Ray nodes on this machine, one CPU each; shut down at the end of the module, whatever happens."""
    from benchmarks.cluster import local_cluster

    with local_cluster(nodes=2) as started:
        yield started


def _corpus(corpus_dir: Path, target: Path) -> Path:
    """The default corpus cut into seven files, with an HTML and a Markdown one, and one that is refused."""
    lines = (corpus_dir / "immigration-data-sharing.txt").read_text(encoding="utf-8").splitlines()
    size = -(-len(lines) // 7)
    target.mkdir()
    for i, start in enumerate(range(0, len(lines), size)):
        (target / f"part-{i}.txt").write_text("\n".join(lines[start : start + size]), encoding="utf-8")
    (target / "ports.md").write_text("# Ports\n\n## Manifests\n\nThe harbour shares manifests with customs.\n")
    (target / "page.html").write_text("<h1>Page</h1><p>Fusion centers publish bulletins weekly.</p>")
    (target / "empty.txt").write_text("   \n")
    return target


def _same_index(local: Path, remote: Path) -> None:
    a, b = load_index(local, search=False), load_index(remote, search=False)
    assert dict(a.documents) == dict(b.documents)
    assert list(a.passages) == list(b.passages)
    assert [sorted(s.documents) for s in a.segments] == [sorted(s.documents) for s in b.segments]
    assert a.manifest.settings == b.manifest.settings and a.manifest.model == b.manifest.model
    for x, y in zip(a.segments, b.segments, strict=True):
        np.testing.assert_allclose(x.passage_vectors, y.passage_vectors, atol=1e-5)
        np.testing.assert_allclose(x.unit_vectors, y.unit_vectors, atol=1e-5)
        assert list(x.unit_offsets) == list(y.unit_offsets)


def test_an_index_built_on_two_nodes_equals_the_local_build(
    cluster: Any, embedder: Any, corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.cluster import RayRunner

    corpus = _corpus(corpus_dir, tmp_path / "corpus")
    monkeypatch.setattr(qa.indexing, "SEGMENT_PASSAGES", 6)  # several segments
    local = index_corpus(corpus, tmp_path / "local", embedder=embedder)
    seen: list[tuple[int, int]] = []
    runner = RayRunner(embedder.name, address=cluster.address, actors=2, batch_size=8)
    assert len(ray.nodes()) == 2
    remote = index_corpus(
        corpus, tmp_path / "ray", embedder=embedder, runner=runner, progress=lambda d, t: seen.append((d, t))
    )
    assert [p.document_id for p in remote.problems] == [p.document_id for p in local.problems] == ["empty.txt"]
    assert (remote.n_documents, remote.n_passages, remote.segments) == (local.n_documents, local.n_passages, 4)
    _same_index(tmp_path / "local", tmp_path / "ray")
    total = seen[-1][1]
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_an_embedding_actor_killed_halfway_costs_only_its_batches(
    cluster: Any, embedder: Any, corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.cluster import RayRunner

    corpus = _corpus(corpus_dir, tmp_path / "corpus")
    monkeypatch.setattr(qa.indexing, "SEGMENT_PASSAGES", 6)
    index_corpus(corpus, tmp_path / "local", embedder=embedder)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if not killed and done < total:
            pids = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
            assert pids, "no embedding actor is running"
            os.kill(int(pids[0]), signal.SIGKILL)
            killed.append(int(pids[0]))

    runner = RayRunner(embedder.name, address=cluster.address, actors=2, batch_size=4)
    index_corpus(corpus, tmp_path / "ray", embedder=embedder, runner=runner, progress=kill_one)
    assert killed
    _same_index(tmp_path / "local", tmp_path / "ray")


# --- serving ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_index(embedder: Any, corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default corpus and XQuAD dev's articles (when ../shared has them) in four segments."""
    documents = [parse_document(p.name, p.read_bytes()) for p in sorted(corpus_dir.glob("*.txt"))]
    if XQUAD.is_file():
        documents += load_squad(XQUAD)[0]
    index = empty_index(embedder.name, embedder.dim, build_index(documents[:1], embedder).manifest.settings)
    for k in range(4):
        index = update_index(index, embedder, add=documents[k::4])
    folder = tmp_path_factory.mktemp("served")
    save_index(index, folder)
    return folder


@pytest.fixture(scope="module")
def ray_server(cluster: Any, served_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``qa serve --ray`` on the cluster: 2 shards, 2 answer replicas; stopped at the end of the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("ray-serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", QA_API_KEYS=WRITE_KEY)
    command = [str(Path(sys.executable).with_name("qa")), "serve", "--ray", cluster.address, "--port", str(port),
               "--index-dir", str(served_index), "--shards", "2", "--answer-replicas", "2"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(server, within=240)
        yield server.url
    finally:
        stop_server(server, signal.SIGINT)  # Ctrl-C: qa serve --ray shuts the Serve application down


def _listening_beyond_loopback() -> list[str]:
    """Sockets of the cluster's processes (raylets, GCS, workers, Serve's proxy and replicas) that listen on
    another address than the loopback one (127.0.0.1, also as an IPv6-mapped address, or ::1)."""
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is absent: cannot list listening sockets")
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    ours = [line for line in lines if any(name in line for name in ("ray", "gcs_server", "raylet", "plasma"))]
    return [line for line in ours if not _loopback(line.split()[3].rsplit(":", 1)[0])]


def _loopback(host: str) -> bool:
    """Whether a listening address as ss prints it (``127.0.0.1``, ``[::ffff:127.0.0.1]``, ``*``) is loopback.

    Example:
        >>> [_loopback(h) for h in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]", "*", "0.0.0.0", "[::]")]
        [True, True, True, False, False, False]
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # "*": every address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _expected(engine: Engine, questions: list[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in answer_record(engine.ask(q)).items() if k != "took_ms"} for q in questions]


def _asked(url: str, questions: list[str]) -> list[dict[str, Any]]:
    def ask(question: str) -> dict[str, Any]:
        response = httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=60)
        assert response.status_code == 200, response.text
        return {k: v for k, v in response.json().items() if k != "took_ms"}

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(ask, questions))


@pytest.fixture(scope="module")
def server_embedder() -> Any:
    """The embedder a server loads (``qa.embedders.load_embedder``, questions on the ONNX export), with the
    same threads as the replicas: the process asked to answer as the cluster does embeds as it does."""
    from qa.embedders import load_embedder

    return load_embedder(Settings().model, threads=Settings().threads)


def test_serve_on_ray_answers_the_gold_set_and_xquad_as_one_process(
    ray_server: str, served_index: Path, server_embedder: Any, gold: list[dict[str, Any]]
) -> None:
    engine = engine_of(load_index(served_index), server_embedder, Settings())
    assert len(engine.index.segments) == 4
    questions = [item["question"] for item in gold]
    if XQUAD.is_file():
        questions += [item.question for item in load_squad(XQUAD)[1]]
    else:
        print(f"{XQUAD} is absent (../shared/datasets): compared on the gold set only")
    expected = _expected(engine, questions)
    assert _asked(ray_server, questions) == expected
    assert _listening_beyond_loopback() == []
    # The search route goes through the shards too.
    found = httpx.get(f"{ray_server}/v1/search", params={"q": questions[0], "k": 5}, timeout=30).json()
    local = engine.search(questions[0], k=5)
    assert [r["passage_id"] for r in found["results"]] == [r.hit.passage.id for r in local]


def test_a_killed_shard_replica_costs_503s_then_the_service_is_whole(
    ray_server: str, served_index: Path, server_embedder: Any, gold: list[dict[str, Any]]
) -> None:
    engine = engine_of(load_index(served_index), server_embedder, Settings())
    questions = [item["question"] for item in gold][:12]
    expected = {e["question"]: e for e in _expected(engine, questions)}
    pids = subprocess.run(["pgrep", "-f", "ServeReplica:qa:shard-0"], capture_output=True, text=True).stdout.split()
    assert len(pids) == 1, pids
    os.kill(int(pids[0]), signal.SIGKILL)
    killed_at = time.monotonic()
    statuses: list[int] = []
    whole_at = None
    while time.monotonic() - killed_at < 60:
        question = questions[len(statuses) % len(questions)]
        response = httpx.post(f"{ray_server}/v1/ask", json={"question": question}, timeout=30)
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert {k: v for k, v in response.json().items() if k != "took_ms"} == expected[question]
            if whole_at is None:
                whole_at = time.monotonic()
            if len(statuses) > 3 and statuses[-3:] == [200, 200, 200]:
                break
        else:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "shard 0" in response.json()["detail"] or "changed" in response.json()["detail"]
            whole_at = None
        time.sleep(0.2)
    assert whole_at is not None and whole_at - killed_at <= 30, statuses
    replaced = subprocess.run(["pgrep", "-f", "ServeReplica:qa:shard-0"], capture_output=True, text=True).stdout
    assert replaced.split() and replaced.split() != pids  # Serve started another replica
    print(json.dumps({"statuses": statuses, "whole_after_s": round(whole_at - killed_at, 1)}))


def test_a_write_through_one_replica_is_answered_by_every_replica_and_shard(ray_server: str) -> None:
    """An upload is committed by the answer replica that receives it; every later question, whichever replica
    answers it, quotes the new document (the shards load the commit the question names). Then a delete."""
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    text = "# Harbour pilots\n\nThe harbour pilots of Port Quillon number exactly forty-two.\n"
    created = httpx.post(f"{ray_server}/v1/documents", json={"document_id": "pilots.md", "text": text},
                         headers=auth, timeout=60)  # fmt: skip
    assert created.status_code == 201, created.text
    question = "How many harbour pilots does Port Quillon have?"
    for _ in range(6):  # two answer replicas: each is asked several times
        answer = httpx.post(f"{ray_server}/v1/ask", json={"question": question}, timeout=60).json()
        assert answer["citations"][0]["document_id"] == "pilots.md", answer
        assert answer["answer"] == "The harbour pilots of Port Quillon number exactly forty-two."
    assert httpx.delete(f"{ray_server}/v1/documents/pilots.md", headers=auth, timeout=60).status_code == 204
    for _ in range(6):
        answer = httpx.post(f"{ray_server}/v1/ask", json={"question": question}, timeout=60).json()
        assert all(c["document_id"] != "pilots.md" for c in answer["citations"]), answer
