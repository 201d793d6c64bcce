"""SIGKILL during a rebuild: the previous index keeps loading with the same answers, and a rerun completes.

The corpus is the US Code (../shared/datasets/uscode, about 3,000 Markdown files and 20,000 passages)
when it is there, else a generated one of the same size. The old index was built with another model
(CrcEmbedder dim 24), so the rebuild re-embeds every passage: about 6 seconds a run with CrcEmbedder on 2 cores.

* Timed kills: ``kill_driver.py`` runs the rebuild and is killed after 10% ... 85% of a full run's time.
* Kills at named points: one run stops at each moment of the build (files read, each embedding phase,
  each file of a segment written, fsync, rename, the journal, the commit file, link, swap, pruning); a
  fork of it is killed there, which leaves the disk exactly as a crash at that point would; the last
  point kills the run itself.
* A real ``qa index`` (real model) is killed while it embeds.

After every kill, the current index must load and be whole: the old commit, with the old answers, or
(only once the swap has happened) the new commit, with the new answers. Then a rerun completes and
clears what the killed runs left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from index_helpers import named_by_commits, segment_names, segments_on_disk
from kill_driver import POINTS
from reliability_helpers import CrcEmbedder, answers, write_corpus

from qa.engine import Engine
from qa.index import VectorIndex
from qa.indexing import index_corpus
from qa.storage import current_commit, load_index

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
USCODE = HERE.parents[2] / "shared" / "datasets" / "uscode"
TIMED_FRACTIONS = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85)
QUESTIONS = [
    "Who may apply for asylum?",
    "What is the oath of allegiance for naturalization?",
    "What are the duties of the Secretary of Homeland Security?",
    "visa waiver program",
    "topic3 item7",
]


RUNNING: list[subprocess.Popen[str]] = []  # every driver started, stopped at the end whatever happens


def driver(corpus: Path, index_dir: Path, batches: int, *points: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, str(HERE / "kill_driver.py"), str(corpus), str(index_dir), str(batches), *points],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    RUNNING.append(process)
    return process


def finish(process: subprocess.Popen[str], timeout: float = 300) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


class Builds:
    """The old and the new index: their answers, and which one a kill left current."""

    def __init__(self, old: Path, new: Path) -> None:
        self.old_commit, self.new_commit = current_commit(old), current_commit(new)
        self.old_answers = self._answers(load_index(old))
        index = load_index(new)
        self.new_answers = self._answers(index)
        self.new_passages, self.new_documents = index.n_passages, sorted(index.documents)

    @staticmethod
    def _answers(index: VectorIndex) -> list[dict[str, Any]]:
        return answers(Engine(index, CrcEmbedder(index.manifest.dim)), QUESTIONS)

    def check(self, index_dir: Path) -> str:
        """Which build the directory serves, after checking that it is whole and answers as it should."""
        index = load_index(index_dir)  # verifies every checksum
        if index.manifest.model == "crc-24":
            assert self._answers(index) == self.old_answers
            return "old"
        assert index.n_passages == self.new_passages
        assert self._answers(index) == self.new_answers
        return "new"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    if (USCODE / "title08").is_dir():
        yield USCODE, "uscode"
    else:
        yield write_corpus(tmp_path_factory.mktemp("generated"), files=3000, paragraphs=7), "generated"


def rerun(root: Path, index_dir: Path, builds: Builds) -> int:
    """Index again to the end: the new build is served and what killed runs left behind is gone."""
    leftovers = [p for p in (index_dir / "segments").iterdir() if p.name not in segment_names(index_dir)]
    leftovers += list(index_dir.glob("current.*.tmp"))
    report = index_corpus(root, index_dir, embedder=CrcEmbedder(), force=True)
    assert not report.skipped and report.n_passages == builds.new_passages
    assert builds.check(index_dir) == "new"
    assert segments_on_disk(index_dir) == named_by_commits(index_dir)  # nothing a killed run left
    assert not [p for p in (index_dir / "segments").iterdir() if p.name.endswith(".tmp")]
    assert not list(index_dir.glob("current.*.tmp")) and not (index_dir / "pending.json").exists()
    return len(leftovers)


def test_kills_during_a_rebuild_leave_a_whole_index(
    corpus: tuple[Path, str], tmp_path: Path, figure: Callable[..., None]
) -> None:
    root, kind = corpus
    old = tmp_path / "old"
    index_corpus(root, old, embedder=CrcEmbedder(24))  # another model than the rebuild's: nothing is reused
    timed_dir, points_dir, reference = (tmp_path / name for name in ("timed", "points", "reference"))
    for target in (timed_dir, points_dir, reference):
        shutil.copytree(old, target, symlinks=True)
    try:
        _kill_and_check(root, kind, old, timed_dir, points_dir, reference, figure)
    finally:
        for process in RUNNING:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)


def _kill_and_check(
    root: Path, kind: str, old: Path, timed_dir: Path, points_dir: Path, reference: Path, figure: Callable[..., None]
) -> None:
    started = time.monotonic()
    batches = int(finish(driver(root, reference, 0)).split()[-1])
    full_run = time.monotonic() - started
    builds = Builds(old, reference)
    assert builds.old_answers != builds.new_answers
    outcomes: list[tuple[str, str]] = []

    for fraction in TIMED_FRACTIONS:
        process = driver(root, timed_dir, batches)
        time.sleep(fraction * full_run)
        kill(process.pid)
        process.communicate(timeout=30)
        outcomes.append((f"after {fraction:.0%} of a run", builds.check(timed_dir)))

    # Two segments no commit names, as a crashed write leaves: the run stopped at each point has them to prune.
    for name in ("20000101T000000Z-01d00001", "20000101T000000Z-01d00002"):
        shutil.copytree(points_dir / "segments" / segment_names(points_dir)[0], points_dir / "segments" / name)
    process = driver(root, points_dir, batches, *POINTS)
    assert process.stdin is not None and process.stdout is not None
    for point in POINTS:
        line = process.stdout.readline().split()
        assert line[:2] == ["paused", point], (point, line)
        kill(int(line[2]))  # a fork of the run, paused here; at the last point, the run itself
        outcomes.append((point, builds.check(points_dir)))
        if point != POINTS[-1]:
            process.stdin.write("go on\n")
            process.stdin.flush()
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    by_point = dict(outcomes)
    swap = POINTS.index("swapped")
    assert all(by_point[p] == "old" for p in POINTS[:swap]), outcomes
    assert all(by_point[p] == "new" for p in POINTS[swap:]), outcomes
    debris = rerun(root, timed_dir, builds) + rerun(root, points_dir, builds)
    figure(
        "kills",
        corpus=kind,
        documents=len(builds.new_documents),
        passages=builds.new_passages,
        full_run_s=round(full_run, 1),
        timed_kills=len(TIMED_FRACTIONS),
        point_kills=len(POINTS),
        points=POINTS,
        outcomes=[f"{where}: {which}" for where, which in outcomes],
        debris_cleared_by_reruns=debris,
    )


@pytest.mark.model
def test_real_qa_index_killed_while_embedding(
    model_index_dir: Path, embedder: Any, corpus_dir: Path, tmp_path: Path, figure: Callable[..., None]
) -> None:
    """The real command and model: SIGKILL once the progress bar shows, then the old index still answers."""
    index_dir = tmp_path / "index"
    shutil.copytree(model_index_dir, index_dir, symlinks=True)
    old = load_index(index_dir, model=embedder.name)
    expected = answers(Engine(old, embedder))
    corpus = write_corpus(tmp_path / "corpus", files=30, paragraphs=5)  # 450 texts: two batches of 256
    shutil.copyfile(corpus_dir / "immigration-data-sharing.txt", corpus / "immigration-data-sharing.txt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    command = [str(Path(sys.executable).with_name("qa")), "index", str(corpus), "--index-dir", str(index_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert process.stderr is not None
    seen = b""
    try:
        deadline = time.monotonic() + 300
        while b"embedding:" not in seen and time.monotonic() < deadline:  # tqdm shows after the first batch
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, seen.decode(errors="replace")
    after = load_index(index_dir, model=embedder.name)
    assert after.path == old.path and answers(Engine(after, embedder)) == expected

    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)  # the rerun
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Indexed 31 documents" in result.stderr
    assert len(load_index(index_dir, model=embedder.name).documents) == 31
    assert not [p for p in (index_dir / "segments").iterdir() if p.name.endswith(".tmp")]
    figure("kills", cli_kills=1, cli_kill_point="while embedding (real model), then a rerun")
