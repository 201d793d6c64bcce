"""Run ``qa.indexing.index_corpus`` (forced, CrcEmbedder) and stop at named points of the build to be killed.

    python kill_driver.py CORPUS INDEX_DIR [POINT ...]

Without points it builds to the end, printing ``done <embedding batches>``. With points, at each one
but the last it forks: the child prints ``paused <point> <pid>`` and waits to be killed (SIGKILL by
the test: on disk, a crash at exactly that point), while the parent waits for the child to die and
for a line on stdin before going on. At the last point the driver itself prints the line and waits to
be killed. Every point is a moment of the build: files read, each phase done, each file of the first
segment written, its fsync and rename, the journal of written segments, the commit file, the new
link, the swap, the pruning.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A flat FAISS index is made when a segment is first searched, never by a build: no point after it.
POINTS = [
    "corpus-read", "planned", "embedded:first", "embedded:half", "embedded:last",
    "lexical-built", "wrote:documents.jsonl", "wrote:passages.jsonl", "wrote:passage_vectors.npy",
    "wrote:unit_vectors.npy", "wrote:postings.npz", "manifest-written", "fsynced", "renamed",
    "journal-written", "commit-written", "link-made", "swapped", "pruning",
]  # fmt: skip


def main(corpus: Path, index_dir: Path, wanted: list[str], batches: int) -> None:
    import numpy as np
    from reliability_helpers import CrcEmbedder

    import qa.build
    import qa.indexing
    import qa.storage
    import qa.writes

    seen: Counter[str] = Counter()

    def reach(point: str) -> None:
        if point not in wanted or seen[point]:
            return
        seen[point] += 1
        if point == wanted[-1]:
            os.write(1, f"paused {point} {os.getpid()}\n".encode())
            time.sleep(600)
            os._exit(3)  # never killed: the test failed
        child = os.fork()
        if child == 0:  # the process that crashes here
            os.write(1, f"paused {point} {os.getpid()}\n".encode())
            time.sleep(600)
            os._exit(3)
        os.waitpid(child, 0)
        sys.stdin.readline()

    def after(point: str | Callable[[tuple[Any, ...]], str], real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            reach(point(args) if callable(point) else point)
            return result

        return wrapper

    def before(point: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            reach(point)
            return real(*args, **kwargs)

        return wrapper

    embedder = CrcEmbedder()
    embed = embedder.embed_passages
    calls = Counter[str]()

    def counted(texts: Any) -> Any:
        vectors = embed(texts)
        calls["batches"] += 1
        n = calls["batches"]
        reach(
            "embedded:first"
            if n == 1
            else "embedded:half"
            if n == batches // 2
            else "embedded:last"
            if n == batches
            else ""
        )
        return vectors

    embedder.embed_passages = counted  # type: ignore[method-assign]  # the driver counts batches
    qa.indexing.load_corpus = after("corpus-read", qa.indexing.load_corpus)
    qa.indexing._batches = after("planned", qa.indexing._batches)
    qa.build.Postings.of = after("lexical-built", qa.build.Postings.of)  # type: ignore[method-assign]
    qa.storage._write_jsonl = after(lambda args: f"wrote:{Path(args[0]).name}", qa.storage._write_jsonl)
    np.save = after(lambda args: f"wrote:{Path(args[0]).name}", np.save)
    np.savez = after(lambda args: f"wrote:{Path(args[0]).name}", np.savez)
    qa.storage.fsync_tree = after("fsynced", before("manifest-written", qa.storage.fsync_tree))
    os.rename = after("renamed", os.rename)
    qa.indexing.write_pending = after("journal-written", qa.indexing.write_pending)
    qa.writes.stage_commit = after("commit-written", qa.writes.stage_commit)
    os.symlink = after("link-made", os.symlink)
    qa.writes.make_current = after("swapped", qa.writes.make_current)
    shutil.rmtree = after("pruning", shutil.rmtree)

    qa.indexing.index_corpus(corpus, index_dir, embedder=embedder, force=True)
    print(f"done {calls['batches']}", flush=True)


if __name__ == "__main__":
    corpus_arg, index_arg, batches_arg, *points = sys.argv[1:]
    unknown = set(points) - set(POINTS)
    if unknown:
        sys.exit(f"unknown points: {sorted(unknown)}")
    main(Path(corpus_arg), Path(index_arg), points, int(batches_arg))
