"""Writes into a segmented index: what one document costs, queries over unmerged segments, sustained writes.

* **One-document write**, at each corpus size: ``qa.writes.add_document`` (the API's write: the
  source stored, the document embedded with the real model into a segment of its own, a commit, the
  engine swapped), p50 and the bytes it adds to the index directory; and, as the baseline in the same
  run, the whole-index write this replaced: the same document, every vector kept, but every segment
  rewritten as one (FAISS and lexical index rebuilt, every file written), as each write did before
  segments. Every written document is then asked about, and must be the first citation.
* **Queries over unmerged segments**: the real base index (US Code, about 10.5k passages) cut into
  20 segments of whole documents against the same passages in one segment: ``Engine.ask`` p50 for
  each, interleaved per question, and whether the answers are identical.
* **Sustained writes**: ``--sustained`` small documents posted one after another to ``POST
  /v1/documents`` on a real server over the largest index, while another client asks questions
  throughout; merges run in the background as they would in use. Errors, wall time, write p50/p99,
  and whether every acknowledged document is found at the end.

    python -m benchmarks.writes                          # 10k and 100k passages, 1,000 sustained writes
    python -m benchmarks.writes --sizes 10000 --sustained 200 --json
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import CACHE, emit, log, machine, parser, summary, table, timed

SEGMENTS = 20
# The largest segment of a synthetic template: qa index's tiered merges leave segments of this order.
TEMPLATE_SEGMENT = 200_000
WRITE = "# Field note {i}\n\nThe ridge census of week {i} counted {n} goats near marker {marker}.\n"
QUESTION = "How many goats did the ridge census of week {i} count near marker {marker}?"


def marker(i: int) -> str:
    """A word of letters only, one per document (a number would be a token of its own, common in the corpus)."""
    return "zq" + "".join("bcdfghjklm"[int(d)] for d in f"{i:05d}") + "x"


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _template(base: Any, n: int, smoke: bool) -> Path:
    """An index of ``n`` passages on disk, cached; each run works on a copy. Real passages up to the
    base's size; past it, synthetic rows in flat segments of at most TEMPLATE_SEGMENT passages, as
    ``qa index`` leaves a large corpus after its merges."""
    from benchmarks.corpora import sub_index, synthetic_segments
    from qa.storage import save_index, writer_lock

    folder = CACHE / f"writes-{'smoke-' if smoke else ''}{base.manifest.model}-{n}-excerpts"
    if not (folder / "current").exists():
        shutil.rmtree(folder, ignore_errors=True)
        index = sub_index(base, n) if n <= base.n_passages else synthetic_segments(base, n, TEMPLATE_SEGMENT)
        with writer_lock(folder):
            save_index(index, folder)
    return folder


def _copy(template: Path, target: Path) -> Path:
    """A copy of an index to write into: files hard-linked (segments never change, and every other file
    is replaced by a rename, never rewritten in place), so a 1M-passage copy costs no disk."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, symlinks=True, copy_function=os.link)
    return target


def one_document_writes(template: Path, embedder: Any, writes: int, baseline_writes: int, work: Path) -> dict[str, Any]:
    """Segment writes and whole-index writes of small documents into a copy of ``template``."""
    from benchmarks.common import default_engine
    from qa import writes as qa_writes
    from qa.build import merge_segments, update_index
    from qa.index import FLAT_MAX_PASSAGES
    from qa.ingest import parse_document
    from qa.sources import StoredSource
    from qa.storage import load_index, make_current, save_index, writer_lock
    from qa.writes import replace_segments

    index_dir = _copy(template, work / "segmented")
    engine = default_engine(load_index(index_dir, model=embedder.name), embedder)
    served = [engine]

    def publish(index: Any, commit: Path) -> None:
        served[0] = served[0].with_index(index)
        make_current(index_dir, commit)

    segment_ms, segment_bytes, vector_bytes, cited = [], [], [], 0
    for i in range(writes):
        data = WRITE.format(i=i, n=100 + i, marker=marker(i)).encode()
        doc = parse_document(f"notes/week-{i}.md", data)
        before = _bytes(index_dir)
        _, ms = timed(
            qa_writes.add_document, index_dir, lambda: served[0].index, embedder, doc,
            StoredSource(doc.id, None, data), publish,
        )  # fmt: skip
        segment_ms.append(ms)
        segment_bytes.append(_bytes(index_dir) - before)
        newest = served[0].index.segments[-1]
        vector_bytes.append(np.asarray(newest.passage_vectors).nbytes + np.asarray(newest.unit_vectors).nbytes)
        answer = served[0].ask(QUESTION.format(i=i, marker=marker(i)))
        cited += bool(answer.citations) and answer.citations[0].document_id == doc.id

    whole_dir = _copy(template, work / "whole")
    whole_ms, whole_bytes = [], []
    # Past FLAT_MAX_PASSAGES the rewrite would also build an HNSW graph over every vector (an hour here).
    for i in range(baseline_writes if served[0].index.n_passages <= FLAT_MAX_PASSAGES else 0):
        doc = parse_document(f"notes/whole-{i}.md", WRITE.format(i=i, n=200 + i, marker=marker(i)).encode())

        def whole_write(doc: Any = doc) -> None:
            with writer_lock(whole_dir):
                added = update_index(load_index(whole_dir, model=embedder.name), embedder, add=[doc])
                names = [s.name for s in added.segments]
                whole = replace_segments(added, names, merge_segments(added, names), added)
                assert whole is not None  # nothing else writes here
                save_index(whole, whole_dir)

        before = _bytes(whole_dir)
        _, ms = timed(whole_write)
        whole_ms.append(ms)
        whole_bytes.append(_bytes(whole_dir) - before)
    passages = served[0].index.n_passages
    shutil.rmtree(work / "segmented", ignore_errors=True)
    shutil.rmtree(work / "whole", ignore_errors=True)
    return {
        "passages": passages,
        "segment_write_ms": summary(segment_ms),
        "segment_write_kb_p50": round(float(np.median(segment_bytes)) / 1024, 1),
        "new_vectors_kb": round(float(np.median(vector_bytes)) / 1024, 1),
        "answerable": f"{cited}/{writes}",
        "segments_after": len(served[0].index.segments),
        "whole_write_ms": summary(whole_ms),
        "whole_write_mb_p50": round(float(np.median(whole_bytes)) / (1 << 20), 1) if whole_bytes else 0.0,
    }


def unmerged_queries(base: Any, embedder: Any, questions: list[str]) -> dict[str, Any]:
    """``Engine.ask`` over the base index in SEGMENTS segments against one, interleaved per question."""
    from benchmarks.common import default_engine
    from qa.build import segment_from
    from qa.index import manifest_of, view_of
    from qa.records import answer_record

    ids = sorted(base.documents)
    segments = [segment_from(base, part) for k in range(SEGMENTS) if (part := ids[k::SEGMENTS])]
    m = base.manifest
    split = view_of(manifest_of(m.model, m.dim, m.settings, segments, [frozenset()] * len(segments)), segments)
    engines = {"merged": default_engine(base, embedder), "segments": default_engine(split, embedder)}
    times: dict[str, list[float]] = {name: [] for name in engines}
    same = 0
    clear = getattr(embedder, "clear_cache", lambda: None)
    for question in questions:
        records = []
        for name, engine in engines.items():
            clear()  # each engine embeds the question itself: the second would find it cached
            answer, ms = timed(engine.ask, question)
            times[name].append(ms)
            record = answer_record(answer)
            record.pop("took_ms")
            records.append(record)
        same += records[0] == records[1]
    p50 = {name: summary(ms)["p50"] for name, ms in times.items()}
    return {
        "passages": base.n_passages,
        "segments": len(segments),
        "questions": len(questions),
        "ask_ms": {name: summary(ms) for name, ms in times.items()},
        "ratio_p50": round(p50["segments"] / p50["merged"], 3),
        "identical_answers": f"{same}/{len(questions)}",
    }


def sustained(template: Path, embedder: Any, writes: int, work: Path) -> dict[str, Any]:
    """``writes`` documents posted one after another to a real server, with questions asked throughout."""
    import httpx

    from api.main import create_app
    from qa.config import Settings
    from qa.storage import load_index
    from tests.http_helpers import live_server

    index_dir = _copy(template, work / "sustained")
    settings = Settings(index_dir=index_dir, api_keys=["bench"], request_timeout=120)
    auth = {"Authorization": "Bearer bench"}
    errors: list[str] = []
    asked = [0]
    done = threading.Event()
    write_ms: list[float] = []
    with live_server(create_app(settings, embedder=embedder)) as url:

        def ask_throughout() -> None:
            with httpx.Client(base_url=url, timeout=120) as client:
                while not done.is_set():
                    response = client.post("/v1/ask", json={"question": "How many goats did the ridge census count?"})
                    asked[0] += 1
                    if response.status_code != 200:
                        errors.append(f"ask {response.status_code}")

        reader = threading.Thread(target=ask_throughout)
        started = time.perf_counter()
        reader.start()
        try:
            with httpx.Client(base_url=url, timeout=120, headers=auth) as client:
                for i in range(writes):
                    body = {
                        "document_id": f"sustained/{i:05d}.md",
                        "text": WRITE.format(i=i, n=300 + i, marker=marker(i)),
                    }
                    response, ms = timed(client.post, "/v1/documents", json=body)
                    write_ms.append(ms)
                    if response.status_code != 201:
                        errors.append(f"write {i}: {response.status_code} {response.text[:200]}")
                    if i % 100 == 99:
                        log(f"sustained: {i + 1} writes")
        finally:
            done.set()
            reader.join()
        seconds = time.perf_counter() - started
        with httpx.Client(base_url=url, timeout=120) as client:
            absent = [i for i in range(writes) if client.get(f"/v1/documents/sustained/{i:05d}.md").status_code != 200]
            missing = [
                i
                for i in range(writes)
                if not any(
                    hit["document_id"] == f"sustained/{i:05d}.md"
                    for hit in client.get("/v1/search", params={"q": marker(i), "k": 3}).json()["results"]
                )
            ]
    index = load_index(index_dir, model=embedder.name)
    shutil.rmtree(work / "sustained", ignore_errors=True)
    return {
        "passages": index.n_passages,
        "writes": writes,
        "seconds": round(seconds, 1),
        "errors": len(errors),
        "first_errors": errors[:3],
        "write_ms": summary(write_ms),
        # The median of each run of 100 writes: flat if a write costs the same late in the run as early.
        "write_p50_by_hundred": [round(float(np.median(write_ms[i : i + 100])), 1) for i in range(0, writes, 100)],
        "questions_asked": asked[0],
        "absent_at_end": len(absent),
        "not_found_at_end": len(missing),
        "segments_at_end": len(index.segments),
    }


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline
    from benchmarks.corpora import base_index
    from benchmarks.latency import questions
    from qa.defaults import DEFAULT_MODEL
    from qa.embed import HashEmbedder
    from qa.embedders import load_embedder

    offline()
    embedder = HashEmbedder(dim=384) if opts.smoke else load_embedder(opts.model or DEFAULT_MODEL, threads=1)
    base, base_name = base_index(embedder, smoke=opts.smoke)
    sizes = [base.n_passages] if opts.smoke else [int(s) for s in opts.sizes.split(",") if s]
    work = CACHE / "writes-work"
    parts = set(opts.parts.split(","))
    rows = []
    for n in sizes if "writes" in parts else []:
        template = _template(base, n, opts.smoke)
        log(f"writes: {n} passages")
        rows.append(one_document_writes(template, embedder, opts.writes, opts.baseline_writes, work))
    asked = questions(8 if opts.smoke else opts.questions)
    queries = unmerged_queries(base, embedder, asked) if "queries" in parts else None
    template = _template(base, sizes[-1] if opts.smoke else opts.sustained_size, opts.smoke)
    load = sustained(template, embedder, opts.sustained, work) if opts.sustained and "sustained" in parts else None
    return {
        "machine": machine(), "embedder": embedder.name, "base": base_name, "writes": rows,
        "unmerged": queries, "sustained": load,
    }  # fmt: skip


def render(payload: dict[str, Any]) -> str:
    rows = [
        [
            r["passages"], r["segment_write_ms"]["p50"], r["segment_write_ms"]["p99"], r["segment_write_kb_p50"],
            r["new_vectors_kb"], r["answerable"],
            *([r["whole_write_ms"]["p50"], r["whole_write_mb_p50"]] if r["whole_write_ms"]["n"] else ["not run", ""]),
        ]
        for r in payload["writes"]
    ]  # fmt: skip
    out = "" if not rows else table(
        f"One-document write ({payload['embedder']}): a segment against rewriting the whole index",
        ["passages", "segment p50 ms", "segment p99 ms", "KB written p50", "of which vectors KB", "first citation",
         "whole-index p50 ms", "whole-index MB written"],
        rows,
    )  # fmt: skip
    q = payload["unmerged"]
    if q:
        out += "\n" + table(
            f"Engine.ask over {q['passages']:,} passages ({payload['base']}): {q['segments']} segments against one",
            ["layout", "p50 ms", "p95 ms", "identical answers"],
            [
                ["one segment" if name == "merged" else f"{q['segments']} segments", s["p50"], s["p95"],
                 q["identical_answers"]]
                for name, s in q["ask_ms"].items()
            ],
        )  # fmt: skip
        out += f"\nRatio of p50s (segments / one): {q['ratio_p50']}\n"
    load = payload.get("sustained")
    if load:
        out += "\n" + table(
            f"Sustained writes over HTTP into {load['passages']:,} passages, questions asked throughout",
            ["writes", "seconds", "errors", "write p50 ms", "write p99 ms", "questions asked", "absent at end",
             "not found by search at end", "segments at end"],
            [[load["writes"], load["seconds"], load["errors"], load["write_ms"]["p50"], load["write_ms"]["p99"],
              load["questions_asked"], load["absent_at_end"], load["not_found_at_end"], load["segments_at_end"]]],
        )  # fmt: skip
        if load.get("write_p50_by_hundred"):
            out += f"\nWrite p50 ms of each 100 writes, in order: {', '.join(map(str, load['write_p50_by_hundred']))}\n"
    return out


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--sizes", default="10000,100000", help="passage counts, comma-separated")
    args.add_argument("--writes", type=int, default=30, help="one-document writes timed per size")
    args.add_argument("--baseline-writes", type=int, default=3, help="whole-index writes timed per size")
    args.add_argument("--questions", type=int, default=100, help="questions for the unmerged-segments comparison")
    args.add_argument("--sustained", type=int, default=1000, help="documents posted in the sustained run (0: none)")
    args.add_argument("--sustained-size", type=int, default=100_000, help="passages in the sustained run's index")
    args.add_argument("--model", default=None, help="embedding model setting [default: all-MiniLM-L6-v2]")
    args.add_argument("--parts", default="writes,queries,sustained", help="which measurements to run")
    opts = args.parse_args()
    if opts.smoke:
        opts.writes, opts.baseline_writes, opts.sustained = 3, 1, 5
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
