"""A real ``qa serve``, killed with SIGKILL around writes, restarted, and read back; its logs never show a key.

* A document acknowledged with 201 is there after a SIGKILL right after the 201 and a restart (JSON
  and multipart uploads); a 204 delete stays deleted.
* A SIGKILL while an upload is in flight leaves a whole index and a server that starts and answers as
  before; if the upload's source reached the disk, the document is indexed at the restart.
* On a damaged index the server starts, /readyz says why with a 503, and a good build swapped in
  later is served without a restart.
* No log line of any of these servers contains the key, or a wrong key a client sent.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from index_helpers import only_segment
from reliability_helpers import API_KEY, QaServe, assert_problem

from qa.sources import source_path
from qa.storage import load_index

pytestmark = [pytest.mark.slow, pytest.mark.model]

AUTH = {"Authorization": f"Bearer {API_KEY}"}
WRONG_KEYS = ["wrong-key-5a1d7c", API_KEY[:-1], API_KEY + "x"]
LLAMAS = "# Llama notes\n\n## Grazing\n\nThe llama herd grazes on the northern ridge every morning in summer.\n"
ALPACAS = b"# Alpaca notes\n\n## Shearing\n\nAlpacas are shorn once a year, in late spring, by a visiting team.\n"
EMUS = "# Emu notes\n\n## Eggs\n\nEmu eggs are dark green and weigh about 600 grams each.\n"


@pytest.fixture
def served(model_index_dir: Path, tmp_path: Path) -> Iterator[Callable[..., QaServe]]:
    """Start servers over one private copy of the real model's index; every log goes to one file."""
    index_dir = tmp_path / "index"
    shutil.copytree(model_index_dir, index_dir, symlinks=True)
    servers: list[QaServe] = []

    def start(**settings: str) -> QaServe:
        server = QaServe(index_dir, tmp_path / "serve.log", QA_API_KEYS=API_KEY, **settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Application startup complete" in log and '"GET /readyz HTTP/1.1"' in log  # the access log is on
    for secret in [API_KEY, *WRONG_KEYS]:
        assert secret not in log, "a key reached the server log"


def _ask(url: str, question: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_writes_survive_sigkill(served: Callable[..., QaServe], tmp_path: Path, figure: Callable[..., None]) -> None:
    """Killed right after a 201, right after a 204, then during an upload; restarted after each."""
    server = served()
    server.wait()
    for wrong in WRONG_KEYS:
        body = {"document_id": "x.md", "text": "x"}
        response = httpx.post(f"{server.url}/v1/documents", json=body, headers={"Authorization": f"Bearer {wrong}"})
        assert_problem(response, 403)
        assert wrong not in response.text
    body = {"document_id": "crash/llamas.md", "text": LLAMAS}
    response = httpx.post(f"{server.url}/v1/documents", json=body, headers=AUTH, timeout=120)
    assert response.status_code == 201, response.text
    server.kill()  # right after the 201

    server = served()
    server.wait()
    document = httpx.get(f"{server.url}/v1/documents/crash/llamas.md").json()
    assert document["text"] == LLAMAS
    answer = _ask(server.url, "Where does the llama herd graze?")
    assert answer["citations"][0]["document_id"] == "crash/llamas.md"
    files = {"file": ("crash/alpacas.md", ALPACAS, "text/markdown")}
    assert httpx.post(f"{server.url}/v1/documents", files=files, headers=AUTH, timeout=120).status_code == 201
    deleted = httpx.delete(f"{server.url}/v1/documents/crash/llamas.md", headers=AUTH, timeout=120)
    assert deleted.status_code == 204
    server.kill()  # right after the 204

    server = served()
    server.wait()
    assert httpx.get(f"{server.url}/v1/documents/crash/alpacas.md").json()["text"] == ALPACAS.decode()
    assert_problem(httpx.get(f"{server.url}/v1/documents/crash/llamas.md"), 404)
    ids = [d["document_id"] for d in httpx.get(f"{server.url}/v1/documents").json()["documents"]]
    assert ids == ["crash/alpacas.md", "immigration-data-sharing.txt"]
    during = _kill_during_an_upload(server, tmp_path / "index")

    server = served()
    server.wait()
    present = httpx.get(f"{server.url}/v1/documents/crash/emus.md").status_code == 200
    assert present == during["stored"] or during["client"] == 201, (during, present)
    assert _ask(server.url, "How many fusion centers are there?")["answer"] == during["answer"]
    assert httpx.get(f"{server.url}/v1/documents/crash/alpacas.md").status_code == 200
    figure(
        "ingestion_crash",
        kills_after_ack=2,
        acknowledged_writes_lost=0,
        kills_during_upload=1,
        during_upload=(
            f"client saw {during['client']}; source on disk: {during['stored']}; indexed after restart: {present}"
        ),
    )


def _kill_during_an_upload(server: QaServe, index_dir: Path) -> dict[str, Any]:
    """SIGKILL while an upload is in flight; the current build must stay whole."""
    answer = _ask(server.url, "How many fusion centers are there?")["answer"]
    results: list[Any] = []

    def upload() -> None:
        try:
            body = {"document_id": "crash/emus.md", "text": EMUS}
            results.append(httpx.post(f"{server.url}/v1/documents", json=body, headers=AUTH, timeout=120).status_code)
        except httpx.TransportError as exc:
            results.append(type(exc).__name__)

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(0.15)  # the request is in flight: parsed, stored, or being indexed
    server.kill()
    thread.join(timeout=30)
    load_index(index_dir)  # whatever happened, the current commit is whole
    return {"client": results[0], "stored": source_path(index_dir, "crash/emus.md").exists(), "answer": answer}


def test_a_damaged_index_is_not_served_and_readyz_says_why(
    served: Callable[..., QaServe], model_index_dir: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    good = only_segment(index_dir)
    spare = index_dir / "segments" / "20000101T000000Z-5bare000"
    shutil.copytree(good, spare)
    commit = json.loads((index_dir / "current").read_text())
    commit["segments"][0]["name"] = spare.name
    (index_dir / "commits" / "99999999.json").write_text(json.dumps(commit))
    vectors = good / "passage_vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-7])
    server = served()
    body = assert_problem(server.wait(status=503), 503)
    # Anyone may call /readyz: it says what to do, and leaves paths and file names to the server's log.
    assert body["detail"] == (
        "the index is damaged or was built with another version or model: rebuild it with `qa index`"
    )
    assert str(tmp_path) not in json.dumps(body)
    assert_problem(httpx.post(f"{server.url}/v1/ask", json={"question": "fusion centers"}), 503, "is damaged")
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    # A good commit made current (as `qa index` does) is served at once, without a restart.
    (index_dir / "current.new").symlink_to(Path("commits") / "99999999.json")
    (index_dir / "current.new").replace(index_dir / "current")
    assert server.wait(status=200).json()["documents"] == 1
