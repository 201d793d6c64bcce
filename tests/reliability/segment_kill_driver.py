"""Write a document, delete one and merge, through ``qa.writes``, stopping at a named point to be killed.

    python segment_kill_driver.py INDEX_DIR POINT

The index holds three one-passage notes in two segments (``test_rel_kill_segments.py`` makes it).
The driver adds ``new.md`` (a segment of its own), deletes ``note-1.md`` (a tombstone), then merges
(``MERGE_FACTOR`` 3: the three segments are one tier). At POINT it prints ``paused POINT`` and waits
to be killed (SIGKILL by the test: on disk, a crash at exactly that point). Without a point reached it
prints ``done``.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (function, its n-th call) -> the point reached once it returns.
EVENTS = {
    ("write_source", 1): "source-stored",
    ("rename", 1): "segment-written",
    ("stage_commit", 1): "commit-written",
    ("make_current", 1): "swapped",
    ("prune_index", 1): "pruned",
    ("write_source", 2): "tombstone-stored",
    ("stage_commit", 2): "delete-commit-written",
    ("make_current", 2): "delete-swapped",
    ("merge_plan", 1): "merge-planned",
    ("merge_segments", 1): "merged-segment-built",
    ("rename", 2): "merged-segment-written",
    ("stage_commit", 3): "merge-commit-written",
    ("make_current", 3): "merge-swapped",
    ("prune_index", 3): "merge-pruned",
}
POINTS = list(EVENTS.values())
NEW = b"# New\n\nAlpacas graze on the high ridge every spring.\n"


def main(index_dir: Path, point: str) -> None:
    import qa.writes
    from qa.embed import HashEmbedder
    from qa.ingest import parse_document
    from qa.sources import StoredSource
    from qa.storage import load_index

    calls: Counter[str] = Counter()

    def hooked(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            calls[name] += 1
            if EVENTS.get((name, calls[name])) == point:
                os.write(1, f"paused {point}\n".encode())
                time.sleep(600)
                os._exit(3)  # never killed: the test failed
            return result

        return wrapper

    for name in ("write_source", "stage_commit", "make_current", "prune_index", "merge_plan", "merge_segments"):
        setattr(qa.writes, name, hooked(name, getattr(qa.writes, name)))
    os.rename = hooked("rename", os.rename)
    qa.writes.MERGE_FACTOR = 3

    embedder = HashEmbedder()
    publish = qa.writes.make_current_of(index_dir)

    def latest() -> Any:
        return load_index(index_dir, model=embedder.name)

    doc = parse_document("new.md", NEW)
    qa.writes.add_document(index_dir, latest, embedder, doc, StoredSource("new.md", None, NEW), publish)
    qa.writes.remove_document(index_dir, latest, embedder, "note-1.md", publish)
    assert qa.writes.merge_once(index_dir, latest, publish)
    print("done", flush=True)


if __name__ == "__main__":
    index_arg, point_arg = sys.argv[1:]
    if point_arg not in POINTS and point_arg != "none":
        sys.exit(f"unknown point {point_arg!r}")
    main(Path(index_arg), point_arg)
