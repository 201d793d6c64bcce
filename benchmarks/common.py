"""What the benchmark scripts share: data paths, timing, percentiles, tables, machine facts.

Every script prints a readable table, or one JSON object with ``--json``, and
takes ``--smoke`` for a run on tiny sizes that only checks that it works.
Nothing here downloads: the model ships in a package, and ``offline()`` makes
Hugging Face libraries fail rather than reach the network.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared"))
USCODE = SHARED / "datasets" / "uscode"
XQUAD = SHARED / "datasets" / "xquad-en-dev" / "xquad-en-dev.json"
GOLD = ROOT / "tests" / "data" / "gold.jsonl"
CORPUS = ROOT / "corpus"
# Built indexes and generated vectors are kept here between runs (QA_BENCH_CACHE overrides).
CACHE = Path(os.environ.get("QA_BENCH_CACHE", Path(tempfile.gettempdir()) / "qa-bench"))


def cached_folder(name: str, fill: Callable[[Path], None]) -> Path:
    """``CACHE/name``, made once: ``fill`` writes into a temporary folder that is renamed when it is complete."""
    folder = CACHE / name
    if folder.is_dir():
        return folder
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    tmp.rename(folder)
    return folder


def offline() -> None:
    """Forbid downloads and quiet the tokenizers' fork warning, before any model library loads."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark takes."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the script runs, times nothing")
    return args


def log(message: str) -> None:
    """Progress goes to stderr; stdout holds only the figures."""
    print(message, file=sys.stderr, flush=True)


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of latencies in milliseconds (nearest-rank percentiles)."""
    if not samples_ms:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    ordered = sorted(samples_ms)

    def rank(p: float) -> float:
        return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]

    return {
        "n": len(ordered),
        "p50": round(rank(50), 3),
        "p95": round(rank(95), 3),
        "p99": round(rank(99), 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def turns(count: int, names: Sequence[str], block: int = 1) -> Iterator[tuple[str, range]]:
    """Who asks which of ``count`` questions when: each name asks ``block`` questions in a row, then the next
    name asks the same ones, the names' order rotating from block to block so that none always follows
    the same neighbour. With ``block`` 1 every question goes to every system in turn, so a noisy
    neighbour hurts all alike, but each system then starts on caches the one before it filled; a longer
    block lets each run on its own warm caches and memory, as a dedicated server does."""
    for n, start in enumerate(range(0, count, block)):
        for name in [*names[n % len(names) :], *names[: n % len(names)]]:
            yield name, range(start, min(start + block, count))


def add_block(args: argparse.ArgumentParser) -> None:
    """The ``--block`` option of the scripts that take ``turns``."""
    args.add_argument(
        "--block", type=int, default=1,
        help="questions each system asks in a row before the next one's turn (1: every question interleaved)",
    )  # fmt: skip


def interleaving(block: int) -> str:
    """How ``turns`` with ``block`` ran, for a table's title."""
    return "interleaved" if block == 1 else f"in turns of {block} questions"


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``fn(*args, **kwargs)`` and return its result and the milliseconds it took (perf_counter)."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table, so that RESULTS.md can hold the printed output as it is."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The process's resident memory now, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load and versions: what a figure depends on."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as handle:
        total_kib = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
    facts: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(total_kib / (1 << 20), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    for package in ("torch", "onnxruntime", "faiss", "bm25s", "numpy"):
        module = sys.modules.get(package)
        if module is not None:
            facts[package] = getattr(module, "__version__", "?")
    return facts


def emit(payload: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    """Print the figures: JSON for machines, tables for people."""
    if as_json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(render(payload))


def default_engine(index: Any, embedder: Any) -> Any:
    """The engine a server runs on ``index`` with the settings of the environment (``QA_*``): by default the
    cross-encoder rereads the best candidates; ``QA_READER_CANDIDATES=0`` measures without it."""
    from qa.config import Settings
    from qa.engine import engine_of

    return engine_of(index, embedder, Settings())
