"""Fixtures for the HTTP API tests.

* ``make_client(**settings)``: a TestClient (lifespan run) on a private copy of the
  HashEmbedder index, for plumbing; ``client`` is one with the key ``test-key``.
* ``model_client``: the real model's engine (shared with the core tests), read-only.

``QA_*`` variables of the calling shell are cleared, so every setting a test
sees is one it set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from api_helpers import API_KEY
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from qa.config import Settings
from qa.embed import HashEmbedder
from qa.engine import Engine

ClientFactory = Callable[..., TestClient]


@pytest.fixture(scope="session", autouse=True)
def _no_qa_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("QA_"):
                patch.delenv(name)
        yield


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def make_client(index_copy: Path, hash_embedder: HashEmbedder) -> Iterator[ClientFactory]:
    """Make TestClients over ``index_copy`` with the given settings (lifespan started)."""
    with ExitStack() as stack:

        def make(*, app: FastAPI | None = None, raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
            if app is None:
                settings = Settings(**{"index_dir": index_copy, **overrides})
                app = create_app(settings, embedder=hash_embedder)
            client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
            return stack.enter_context(client)

        yield make


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client(api_keys=[API_KEY])


@pytest.fixture(scope="session")
def model_client(model_index_dir: Path, model_engine: Engine) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=model_index_dir), engine=model_engine)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def model_index_copy(model_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the real model's index that a test may write to."""
    target = tmp_path / "model-index"
    shutil.copytree(model_index_dir, target, symlinks=True)
    return target
