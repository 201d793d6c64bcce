"""Questions keep being answered while a document is added and deleted (real server, real model)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from api_helpers import API_KEY, live_server

from api.main import create_app
from qa.config import Settings

pytestmark = pytest.mark.model

AUTH = {"Authorization": f"Bearer {API_KEY}"}
FACT = "The lighthouse keeper on Brindlewick Island counted 417 puffins during the spring survey."
NOTE = f"# Brindlewick Island\n\n## Wildlife\n\n{FACT} The survey runs every April.\n"
QUESTION = "How many puffins did the lighthouse keeper on Brindlewick Island count?"
BACKGROUND = "How many fusion centers are there?"


def test_asking_continuously_during_upload_and_delete(model_index_copy: Path, embedder) -> None:
    app = create_app(Settings(index_dir=model_index_copy, api_keys=[API_KEY]), embedder=embedder)
    stop = threading.Event()
    answered: list[str | None] = []
    failures: list[str] = []

    def ask_continuously(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.post("/v1/ask", json={"question": BACKGROUND, "top_k": 1})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    answered.append(response.json()["answer"])

    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        asker = threading.Thread(target=ask_continuously, args=(url,))
        asker.start()
        try:
            added = client.post("/v1/documents", json={"document_id": "notes/puffins.md", "text": NOTE}, headers=AUTH)
            assert added.status_code == 201 and added.json() == {"document_id": "notes/puffins.md", "passages": 1}
            after_add = client.get("/v1/ask", params={"q": QUESTION, "k": 1}).json()
            deleted = client.delete("/v1/documents/notes/puffins.md", headers=AUTH)
            assert deleted.status_code == 204
            after_delete = client.get("/v1/ask", params={"q": QUESTION, "k": 1}).json()
            during = len(answered)
        finally:
            stop.set()
            asker.join(timeout=60)
    assert failures == []
    assert during > 0 and set(answered) == {
        "About 80 fusion centers are federally overseen but locally operated nationwide, including New York."
    }
    assert after_add["answerable"] is True and after_add["answer"] == FACT
    assert after_add["citations"][0]["document_id"] == "notes/puffins.md"
    assert after_add["citations"][0]["section_path"] == ["Wildlife"]
    assert all(c["document_id"] != "notes/puffins.md" for c in after_delete["citations"])
