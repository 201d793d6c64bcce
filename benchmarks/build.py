"""Index build throughput: ``qa index``'s pipeline against the raw model on the same texts.

The baseline is ``SentenceTransformer.encode`` over exactly the texts that a
build embeds (each passage's retrieval text, then every answer unit), batch
size as the embedder's. The pipeline is ``qa.indexing.index_corpus`` on the
same files (read, chunk, embed, BM25, FAISS, checksummed atomic save). They
alternate, twice each, and the overhead is the ratio of their medians. Peak
memory and the time to a first answer come from ``qa index`` run as a child
process; the size on disk is that build's.

    python -m benchmarks.build                 # 300 US Code files, about 2k passages
    python -m benchmarks.build --files 100 --json
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import CORPUS, USCODE, emit, log, machine, parser, table, timed

REPEATS = 2
# Texts per embed_passages call in qa.engine._embed_in_batches.
CALL_TEXTS = 256


def sample_corpus(target: Path, files: int, smoke: bool) -> Path:
    """Copy the first ``files`` US Code files (or the default corpus) into ``target``."""
    target.mkdir(parents=True)
    if smoke or not USCODE.is_dir():
        if not smoke:
            log(f"{USCODE} is absent: building the default corpus only")
        sources = sorted(CORPUS.iterdir())
    else:
        sources = sorted(USCODE.rglob("*.md"))[:files]
    for source in sources:
        shutil.copy(source, target / source.name)
    return target


def build_texts(corpus: Path) -> tuple[list[str], int]:
    """The texts a build embeds, in its order, and the passage count."""
    from qa.chunk import chunk_document, retrieval_text, unit_texts
    from qa.ingest import load_corpus

    passages = [p for d in sorted(load_corpus(corpus)[0], key=lambda d: d.id) for p in chunk_document(d)]
    return [retrieval_text(p) for p in passages] + [t for p in passages for t in unit_texts(p)], len(passages)


def child_build(corpus: Path, index_dir: Path, model: str) -> dict[str, float]:
    """``qa index`` in a child process: wall time with model load, and its peak memory."""
    import os

    env = {**os.environ, "QA_MODEL": model, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    qa = Path(sys.executable).with_name("qa")
    _, ms = timed(
        lambda: subprocess.run(
            [str(qa), "index", str(corpus), "--index-dir", str(index_dir), "--force"],
            env=env,
            check=True,
            capture_output=True,
        )  # fmt: skip
    )
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    build = (index_dir / "current").resolve()
    size = sum(p.stat().st_size for p in build.rglob("*") if p.is_file())
    return {"seconds": round(ms / 1000, 2), "peak_rss_mb": round(peak_mib, 1), "disk_bytes": size}


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline
    from qa.defaults import DEFAULT_MODEL
    from qa.embed import BATCH_SIZE, Embedder, HashEmbedder, SentenceTransformerEmbedder
    from qa.indexing import index_corpus

    offline()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-build-"))
    try:
        corpus = sample_corpus(work / "corpus", opts.files, opts.smoke)
        texts, n_passages = build_texts(corpus)
        embedder: Embedder
        if opts.smoke:
            embedder = HashEmbedder(dim=384)
            encode: Any = embedder.embed_passages
        else:
            embedder = model = SentenceTransformerEmbedder(threads=opts.threads)

            def encode(some: list[str]) -> Any:
                return model._model.encode(some, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)

        # build_index embeds passages, then units, each in calls of CALL_TEXTS: length-sorting happens per call.
        calls = [
            texts[at : min(at + CALL_TEXTS, end)]
            for start, end in ((0, n_passages), (n_passages, len(texts)))
            for at in range(start, end, CALL_TEXTS)
        ]
        raw_s, chunked_s, pipeline_s = [], [], []
        for run in range(1 if opts.smoke else REPEATS):
            log(f"raw encode of {len(texts)} texts")
            raw_s.append(timed(encode, texts)[1] / 1000)
            log(f"raw encode in {len(calls)} calls, as build_index makes them")
            chunked_s.append(timed(lambda: [encode(call) for call in calls])[1] / 1000)
            log(f"index_corpus over {n_passages} passages")
            # A new folder each time: over a previous build, unchanged passages would reuse its vectors.
            report = index_corpus(corpus, work / f"index-{run}", embedder=embedder)
            pipeline_s.append(report.seconds)
        raw, pipeline = statistics.median(raw_s), statistics.median(pipeline_s)
        child = {} if opts.smoke else child_build(corpus, work / "child-index", DEFAULT_MODEL)
        return {
            "machine": machine(),
            "files": len(list(corpus.iterdir())),
            "passages": n_passages,
            "texts": len(texts),
            "raw_encode_s": [round(s, 2) for s in raw_s],
            "raw_in_calls_s": [round(s, 2) for s in chunked_s],
            "raw_in_calls_overhead": round(statistics.median(chunked_s) / raw - 1, 4),
            "pipeline_s": [round(s, 2) for s in pipeline_s],
            "raw_texts_per_s": round(len(texts) / raw, 1),
            "pipeline_texts_per_s": round(len(texts) / pipeline, 1),
            "pipeline_passages_per_s": round(n_passages / pipeline, 1),
            "overhead": round(pipeline / raw - 1, 4),
            "qa_index_child": child,
            "disk_bytes_per_passage": round(child["disk_bytes"] / n_passages) if child else None,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def render(payload: dict[str, Any]) -> str:
    rows = [
        ["raw model.encode", ", ".join(map(str, payload["raw_encode_s"])), payload["raw_texts_per_s"], "-", "-"],
        [
            f"raw, in build_index's {CALL_TEXTS}-text calls",
            ", ".join(map(str, payload["raw_in_calls_s"])),
            "-",
            "-",
            f"{payload['raw_in_calls_overhead']:+.1%}",
        ],
        [
            "index_corpus",
            ", ".join(map(str, payload["pipeline_s"])),
            payload["pipeline_texts_per_s"],
            payload["pipeline_passages_per_s"],
            f"{payload['overhead']:+.1%}",
        ],
    ]
    title = f"Index build: {payload['passages']} passages, {payload['texts']} texts embedded ({payload['files']} files)"
    out = table(title, ["path", "seconds (each run)", "texts/s", "passages/s", "overhead"], rows)
    child = payload["qa_index_child"]
    if child:
        rows = [
            [
                child["seconds"],
                child["peak_rss_mb"],
                round(child["disk_bytes"] / (1 << 20), 2),
                payload["disk_bytes_per_passage"],
            ]
        ]
        out += "\n" + table(
            "`qa index` as a child process",
            ["seconds (with model load)", "peak RSS MB", "disk MB", "disk bytes/passage"],
            rows,
        )
    return out


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--files", type=int, default=300, help="US Code files to index")
    args.add_argument(
        "--threads", type=int, default=2, help="torch threads, pipeline and baseline alike (2: every core)"
    )
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
