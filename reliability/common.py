"""What the reliability scripts share: a real ``qa serve`` on loopback, /proc readings, figures on disk.

Every server is a ``qa serve`` subprocess bound to 127.0.0.1 on a free port; every loop is bounded in
count and in time; figures are written as JSON under ``artifacts/reliability/`` (``RELIABILITY_ARTIFACTS``
overrides), where ``reliability.report`` reads them.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("RELIABILITY_ARTIFACTS", ROOT / "artifacts" / "reliability"))
CORPUS = ROOT / "corpus"
GOLD = ROOT / "tests" / "data" / "gold.jsonl"
QA = Path(sys.executable).with_name("qa")
READY_WITHIN = 180.0  # seconds: model load, plus indexing the default corpus when the index is missing
STOP_WITHIN = 20.0


def log(message: str) -> None:
    """Progress goes to stderr; figures go to JSON files and stdout."""
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``qa serve`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_server(index_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> Server:
    """Start ``qa serve`` on 127.0.0.1 and wait until /readyz answers 200.

    Settings come from ``env`` only: ``QA_*`` variables of the calling shell are dropped.

    Raises:
        RuntimeError: If the server exits or is not ready within READY_WITHIN seconds.
    """
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    full_env = {**base, "QA_INDEX_DIR": str(index_dir), "QA_CORPUS_DIR": str(CORPUS), "HF_HUB_OFFLINE": "1"}
    full_env.update(env or {})
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [str(QA), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(server)
    except BaseException:
        stop_server(server, signal.SIGKILL)
        raise
    return server


def wait_ready(server: Server, within: float = READY_WITHIN) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"qa serve exited with {server.process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"qa serve was not ready within {within:g} s:\n{server.log_text()[-3000:]}")


def stop_server(server: Server, sig: int = signal.SIGTERM) -> int:
    """Stop the server (SIGTERM: graceful) and return its exit code; SIGKILL if it does not stop."""
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=STOP_WITHIN)
    return server.process.returncode


# ---- /proc readings --------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) and the thread count of a process, from /proc/PID/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            values[key] = int(rest.split()[0])
    return values


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- figures ---------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def machine() -> dict[str, Any]:
    """Facts about the machine and the moment, printed next to every figure."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write figures to ARTIFACTS/<name>.json and return the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# ---- what clients ask --------------------------------------------------------------------------

# Questions a reader of the default corpus might type that it cannot answer, and other languages.
EXTRA_QUESTIONS = [
    "What is the capital of Australia?",
    "How do I reset my password?",
    "¿Cuántas agencias participan en Secure Communities?",
    "Wie viele Fusion Center gibt es?",
    "fusion centers",
    "287(g)",
    "Which agencies share biometric data, and with whom, and under which program, "
    "and since when has that been the case in New York and elsewhere?",
]
FILLERS = ["please", "exactly", "today", "in the report", "briefly", "again", "now", "overall"]


def gold_questions() -> list[str]:
    with GOLD.open(encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def question_mix(seed: int = 20261125, unique_share: float = 0.5) -> Iterator[tuple[str, bool]]:
    """An endless, reproducible stream of questions: the gold set (answerable and not), some
    off-topic and non-English ones, and a share of one-off variants that miss the server's query cache.

    Yields:
        (question, one_off): ``one_off`` is true for a variant never asked before.
    """
    rng = random.Random(seed)
    pool = gold_questions() + EXTRA_QUESTIONS
    serial = 0
    while True:
        question = rng.choice(pool)
        if rng.random() < unique_share:
            serial += 1
            yield f"{question.rstrip('?')} {rng.choice(FILLERS)} #{seed}-{serial}?", True
        else:
            yield question, False
