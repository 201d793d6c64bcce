"""A real `qa serve` process on a free loopback port: ready, answering, fuzzed, stopped by SIGTERM.

The tests in this module share one server and run in file order; the last one stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import API_KEY, free_port

pytestmark = pytest.mark.model

READY_WITHIN = 90  # seconds: model load plus index verification, with room for a slow CI machine
STOP_WITHIN = 15
QA = Path(sys.executable).with_name("qa")


class Served:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log
        self.ready: int | None = None


@pytest.fixture(scope="module")
def served(model_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import shutil

    index_dir = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(model_index_dir, index_dir, symlinks=True)
    port = free_port()
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_API_KEYS": API_KEY, "HF_HUB_OFFLINE": "1"}
    log = index_dir.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(QA), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        served.ready = wait_ready(served)  # here, not in the first test: the slow tier runs without it
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_ready(served: Served) -> int | None:
    """Poll /readyz for up to READY_WITHIN seconds; the last status seen (200 once ready)."""
    deadline = time.monotonic() + READY_WITHIN
    status = None
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            return None
        try:
            status = httpx.get(f"{served.url}/readyz", timeout=5).status_code
        except httpx.TransportError:
            status = None
        if status == 200:
            break
        time.sleep(0.25)
    return status


def test_ready_within_a_bounded_wait(served: Served) -> None:
    assert served.process.poll() is None, served.log.read_text()
    assert served.ready == 200, served.log.read_text()


def test_answers(served: Served) -> None:
    response = httpx.post(f"{served.url}/v1/ask", json={"question": "How many fusion centers are there?"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["answer"] == (
        "About 80 fusion centers are federally overseen but locally operated nationwide, including New York."
    )
    assert httpx.get(f"{served.url}/healthz").headers["x-content-type-options"] == "nosniff"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(served: Served, tmp_path: Path) -> None:
    """Property-based requests from /openapi.json (writes included, with a key): no 5xx, bodies match the schema."""
    command = [
        str(QA.with_name("st")), "run", f"{served.url}/openapi.json",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--max-examples", "60", "--phases", "examples,coverage,fuzzing", "--seed", "20261125",
        "--header", f"Authorization: Bearer {API_KEY}", "--generation-database", "none",
        "--request-timeout", "30", "--workers", "1", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_sigterm_stops_it_cleanly(served: Served) -> None:
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=STOP_WITHIN) == 0, served.log.read_text()
    log = served.log.read_text()
    assert "Application startup complete" in log and "Application shutdown complete" in log


@pytest.mark.slow
def test_serve_builds_a_missing_index_first(tmp_path: Path) -> None:
    """`qa serve` on an empty index directory indexes QA_CORPUS_DIR, then serves it (the README's first run)."""
    corpus = Path(__file__).resolve().parents[2] / "corpus"
    port = free_port()
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "serve.log"
    command = [str(QA), "serve", "--port", str(port), "--index-dir", str(tmp_path / "index")]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        assert response.json() == {"status": "ready", "documents": 1, "passages": 16, "model": "all-MiniLM-L6-v2"}
        assert "No index in" in log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_WITHIN) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
