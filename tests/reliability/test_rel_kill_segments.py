"""SIGKILL at each step of a segment write, a tombstone and a merge: the last commit always loads, and
every acknowledged write is there after the restart's recovery.

``segment_kill_driver.py`` adds a document, deletes one and merges three segments through
``qa.writes``; one run per point is killed there (after the source is stored, the segment written,
the commit written, ``current`` swapped, the pruning; the same for the delete; and for the merge
after its plan, its segment built and written, its commit, its swap, its pruning). After each kill:

* the index loads (every checksum verified) and holds one of the committed states: before the write,
  after it, after the delete, or after the merge;
* a restart's recovery (``qa.writes.recover_sources``) brings it to what the stored records say: the
  new document present once its source was stored, the deleted one absent once its tombstone was;
* a merge then completes, answers equal a one-shot build of the same documents, and no segment is
  left that no commit names.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from index_helpers import named_by_commits, segments_on_disk
from reliability_helpers import answers
from segment_kill_driver import NEW, POINTS

import qa.writes
from qa.build import build_index, update_index
from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.ingest import parse_document
from qa.sources import iter_sources
from qa.storage import load_index, save_index, writer_lock

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
NOTES = [
    parse_document(f"note-{i}.md", f"# Note {i}\n\nLlamas graze on ridge {i} in the north.\n".encode())
    for i in range(3)
]
QUESTIONS = ["Where do llamas graze?", "Which animals graze on the high ridge?", "ridge 1"]
STATES = {
    "before the write": {"note-0.md", "note-1.md", "note-2.md"},
    "after the write": {"note-0.md", "note-1.md", "note-2.md", "new.md"},
    "after the delete": {"note-0.md", "note-2.md", "new.md"},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three notes in two segments (two, then one)."""
    index_dir = tmp_path_factory.mktemp("segments-base")
    with writer_lock(index_dir):
        index = save_index(build_index(NOTES[:2], HashEmbedder()), index_dir)
        save_index(update_index(load_index(index_dir), HashEmbedder(), add=NOTES[2:]), index_dir)
    assert index.name == "00000001.json"
    return index_dir


def run_to(index_dir: Path, point: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, str(HERE / "segment_kill_driver.py"), str(index_dir), point],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == f"paused {point}", (line, process.stderr.read() if process.stderr else "")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)


def _one_shot_answers(ids: set[str]) -> list[dict[str, object]]:
    docs = [d for d in NOTES if d.id in ids] + ([parse_document("new.md", NEW)] if "new.md" in ids else [])
    return answers(Engine(build_index(docs, HashEmbedder()), HashEmbedder()), QUESTIONS)


def test_kills_at_each_step_of_a_write_a_delete_and_a_merge(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figure: Callable[..., None]
) -> None:
    monkeypatch.setattr(qa.writes, "MERGE_FACTOR", 3)
    outcomes = {}
    for point in POINTS:
        index_dir = tmp_path / point
        shutil.copytree(base, index_dir, symlinks=True)
        run_to(index_dir, point)
        index = load_index(index_dir, model="hash-64")  # the last commit loads, checksums verified
        state = next(name for name, ids in STATES.items() if set(index.documents) == ids)
        merged = len(index.segments) == 1
        outcomes[point] = state + (", merged" if merged else "")
        latest = partial(load_index, index_dir, model="hash-64")
        qa.writes.recover_sources(index_dir, latest, HashEmbedder(), qa.writes.make_current_of(index_dir))
        stored = {s.document_id: s.deleted for s in iter_sources(index_dir)}
        expected = {"note-0.md", "note-2.md"} | ({"new.md"} if "new.md" in stored else set())
        expected |= set() if stored.get("note-1.md") else {"note-1.md"}
        recovered = load_index(index_dir, model="hash-64")
        assert set(recovered.documents) == expected, point
        qa.writes.merge_all(index_dir, latest)
        final = load_index(index_dir, model="hash-64")
        assert set(final.documents) == expected and qa.writes.merge_plan(final) == (), point
        assert answers(Engine(final, HashEmbedder()), QUESTIONS) == _one_shot_answers(expected), point
        assert segments_on_disk(index_dir) == named_by_commits(index_dir), point
    # The write's own steps before the swap leave the old commit; from the swap on, the new one.
    assert outcomes["commit-written"] == "before the write" and outcomes["swapped"] == "after the write"
    assert outcomes["delete-commit-written"] == "after the write" and outcomes["delete-swapped"] == "after the delete"
    assert (
        outcomes["merge-commit-written"] == "after the delete"
        and outcomes["merge-swapped"] == "after the delete, merged"
    )
    figure("kills", segment_points=len(POINTS), segment_outcomes=[f"{p}: {o}" for p, o in outcomes.items()])
