"""``qa index`` of a large synthetic corpus: peak memory, and a kill -9 halfway then a rerun.

A generated Markdown corpus of ``--passages`` one-paragraph passages (seeded, varied words, so the
postings and the vocabulary grow as a real corpus's do) is indexed three times by
``qa.indexing.index_corpus`` in child processes, with the hashing embedder (384 dimensions, no
model: what is measured is the index's own work and memory, the embedding model's time is
``benchmarks.build``'s):

* uninterrupted, to the end: wall time and peak RSS;
* killed with SIGKILL once ``pending.json`` names half of the segments the run will write;
* rerun on the killed run's directory: wall time, peak RSS, documents taken up from the killed run.

The rerun must end with the same index as the uninterrupted run: the same documents, the same live
passages in the same order, the same vectors, and the same hits for a set of queries.

    python -m benchmarks.resume --passages 200000
    python -m benchmarks.resume --passages 1000000 --whole-only   # memory and time only
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import CACHE, ROOT, cached_folder, emit, log, machine, parser, table
from qa.indexing import SEGMENT_PASSAGES

PARAGRAPHS_PER_FILE = 50
WORDS = 20_000  # a vocabulary of about this many distinct words
SEED = 20261130
CHILD = """
import json, resource, sys, time
from pathlib import Path
import qa.indexing
from qa.embed import HashEmbedder
from qa.indexing import index_corpus
qa.indexing.SEGMENT_PASSAGES = int(sys.argv[3])
started = time.perf_counter()
report = index_corpus(Path(sys.argv[1]), Path(sys.argv[2]), embedder=HashEmbedder(dim=384))
print(json.dumps({
    "seconds": round(time.perf_counter() - started, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "documents": report.n_documents, "passages": report.n_passages, "resumed": report.resumed,
    "segments": report.segments, "merges": report.merges,
}), flush=True)
"""


def corpus(passages: int) -> Path:
    """``passages`` two-sentence paragraphs in files of PARAGRAPHS_PER_FILE, cached by size."""

    def fill(tmp: Path) -> None:
        rng = random.Random(SEED)
        letters = [rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3 * WORDS)]
        words = ["".join(letters[3 * w : 3 * w + 3]) for w in range(WORDS)]
        cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(WORDS)))  # Zipf: few common words
        for number in range(-(-passages // PARAGRAPHS_PER_FILE)):
            count = min(PARAGRAPHS_PER_FILE, passages - number * PARAGRAPHS_PER_FILE)
            body = "\n\n".join(
                " ".join(rng.choices(words, cum_weights=cumulative, k=12)).capitalize()
                + f" in district {number}-{j}. "
                + " ".join(rng.choices(words, cum_weights=cumulative, k=10)).capitalize()
                + "."
                for j in range(count)
            )
            (tmp / f"file-{number:06d}.md").write_text(f"# File {number}\n\n{body}\n", encoding="utf-8")

    return cached_folder(f"resume-corpus-{passages}", fill)


def child(corpus_dir: Path, index_dir: Path, segment_passages: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(corpus_dir), str(index_dir), str(segment_passages)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"qa index child exited with {process.returncode}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def kill_halfway(corpus_dir: Path, index_dir: Path, segment_passages: int, segments: int) -> dict[str, Any]:
    """Start a run, SIGKILL it once its journal names half of ``segments``; what it had written, and whether
    it finished before the kill (a small corpus can be indexed between two looks at the journal)."""
    process = child(corpus_dir, index_dir, segment_passages)
    started = time.perf_counter()
    written = 0
    while process.poll() is None:
        try:
            written = len(json.loads((index_dir / "pending.json").read_text())["segments"])
        except (OSError, ValueError, KeyError):
            written = 0
        if written >= max(1, segments // 2):
            break
        time.sleep(0.05)
    finished_first = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return {
        "killed_after_s": round(time.perf_counter() - started, 1),
        "segments_written": written,
        "finished_first": finished_first,
    }


def same_index(a: Path, b: Path, queries: int) -> dict[str, Any]:
    """Whether two index directories hold the same documents, passages, vectors and hits."""
    from qa.embed import HashEmbedder
    from qa.retrieve import retrieve
    from qa.storage import load_index

    one, two = load_index(a), load_index(b)
    live_one, live_two = list(one.live_passages()), list(two.live_passages())
    rng = np.random.default_rng(SEED)
    rows = rng.choice(len(live_one), size=min(2000, len(live_one)), replace=False)
    vectors = bool(
        np.array_equal(one.passage_vectors[[one.by_id[live_one[r].id] for r in rows]],
                       two.passage_vectors[[two.by_id[live_two[r].id] for r in rows]])
    )  # fmt: skip
    embedder = HashEmbedder(dim=384)
    texts = [live_one[int(r)].text[:80] for r in rows[:queries]]
    hits = all(
        [(h.passage.id, h.score) for h in retrieve(one, embedder.embed_queries([q])[0], q, k=10)]
        == [(h.passage.id, h.score) for h in retrieve(two, embedder.embed_queries([q])[0], q, k=10)]
        for q in texts
    )
    return {
        "documents": one.documents == two.documents,
        "passages": [p.id for p in live_one] == [p.id for p in live_two],
        "vectors_sampled": vectors,
        "hits": f"{'all' if hits else 'not all'} of {len(texts)} queries",
        "segments": (len(one.segments), len(two.segments)),
    }


def run(opts: Any) -> dict[str, Any]:
    passages = 6 * PARAGRAPHS_PER_FILE if opts.smoke else opts.passages
    per_segment = 2 * PARAGRAPHS_PER_FILE if opts.smoke else opts.segment_passages
    source = corpus(passages)
    work = CACHE / "resume-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    segments = max(1, -(-passages // per_segment))
    log(f"resume: uninterrupted run over {passages} passages")
    whole = finish(child(source, work / "uninterrupted", per_segment))
    if opts.whole_only:
        shutil.rmtree(work, ignore_errors=True)
        return {"machine": machine(), "passages": passages, "uninterrupted": whole}
    log("resume: a run killed halfway")
    killed = kill_halfway(source, work / "resumed", per_segment, segments)
    log(f"resume: killed after {killed['segments_written']} segment(s); the rerun")
    rerun = finish(child(source, work / "resumed", per_segment))
    same = same_index(work / "uninterrupted", work / "resumed", 10 if opts.smoke else 50)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "machine": machine(),
        "passages": passages,
        "uninterrupted": whole,
        "killed": killed,
        "rerun": rerun,
        "same": same,
    }


def render(payload: dict[str, Any]) -> str:
    whole = payload["uninterrupted"]
    if "rerun" not in payload:
        return table(
            f"qa index over {payload['passages']:,} synthetic passages (hashing embedder), uninterrupted",
            ["run", "seconds", "peak RSS MB", "segments", "merges"],
            [["uninterrupted", whole["seconds"], whole["peak_rss_mb"], whole["segments"], whole["merges"]]],
        )
    rerun, killed, same = payload["rerun"], payload["killed"], payload["same"]
    out = table(
        f"qa index over {payload['passages']:,} synthetic passages (hashing embedder): whole, killed halfway, rerun",
        ["run", "seconds", "peak RSS MB", "documents taken up", "segments", "merges"],
        [
            ["uninterrupted", whole["seconds"], whole["peak_rss_mb"], 0, whole["segments"], whole["merges"]],
            [
                f"finished before the kill ({killed['killed_after_s']} s)"
                if killed.get("finished_first")
                else f"killed after {killed['segments_written']} segment(s) ({killed['killed_after_s']} s)",
                "",
                "",
                "",
                "",
                "",
            ],
            ["rerun", rerun["seconds"], rerun["peak_rss_mb"], rerun["resumed"], rerun["segments"], rerun["merges"]],
        ],
    )
    out += (
        f"\nThe rerun's index against the uninterrupted one: documents {'equal' if same['documents'] else 'DIFFER'}, "
        f"live passages {'equal' if same['passages'] else 'DIFFER'}, sampled vectors "
        f"{'equal' if same['vectors_sampled'] else 'DIFFER'}, identical hits for {same['hits']}.\n"
    )
    return out


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--passages", type=int, default=200_000, help="passages in the generated corpus")
    args.add_argument(
        "--segment-passages", type=int, default=SEGMENT_PASSAGES, help="passages per segment qa index writes"
    )
    args.add_argument("--whole-only", action="store_true", help="only the uninterrupted run (memory and time)")
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
