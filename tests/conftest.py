"""Session fixtures shared by the core tests.

* ``corpus_dir`` / ``corpus_document``: the default corpus, read once.
* ``hash_index_dir`` / ``hash_index``: the default corpus indexed with ``HashEmbedder``
  (fast, deterministic, no meaning) for plumbing tests. Tests that damage or
  rebuild an index take ``index_copy``, a private copy.
* ``embedder``: the one real ``SentenceTransformerEmbedder`` of the session, and
  ``model_index_dir`` / ``model_engine`` built with it. Only tests marked
  ``@pytest.mark.model`` may use them (enforced at collection).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

# The fault, fuzz and widget tests run the first ranker alone: the cross-encoder costs about 16 ms per
# candidate read and says nothing about plumbing. The API tests (tests/api, which clear every QA_ variable)
# run the default configuration, cross-encoder included, and its own tests turn it on explicitly
# (tests/test_reader.py, tests/test_engine.py).
os.environ.setdefault("QA_READER_CANDIDATES", "0")

from qa.embed import HashEmbedder, SentenceTransformerEmbedder
from qa.engine import Engine
from qa.index import VectorIndex
from qa.indexing import index_corpus
from qa.ingest import load_corpus
from qa.storage import load_index
from qa.types import Document

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "corpus"
DEFAULT_DOC_ID = "immigration-data-sharing.txt"
GOLD_PATH = ROOT / "tests" / "data" / "gold.jsonl"

# Fixtures that load the real model: a test using one must be marked `model`.
MODEL_FIXTURES = frozenset({"embedder", "model_index_dir", "model_engine"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("model") is None
    ]
    if unmarked:
        raise pytest.UsageError("tests using the real model must be marked @pytest.mark.model: " + ", ".join(unmarked))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_document(corpus_dir: Path) -> Document:
    documents, problems = load_corpus(corpus_dir)
    assert problems == []
    assert [d.id for d in documents] == [DEFAULT_DOC_ID]
    return documents[0]


@pytest.fixture(scope="session")
def gold() -> list[dict[str, Any]]:
    with GOLD_PATH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def hash_index_dir(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    index_dir = tmp_path_factory.mktemp("hash-index")
    report = index_corpus(corpus_dir, index_dir, embedder=HashEmbedder())
    assert not report.skipped and report.problems == []
    return index_dir


@pytest.fixture(scope="session")
def hash_index(hash_index_dir: Path) -> VectorIndex:
    return load_index(hash_index_dir, model=HashEmbedder().name)


@pytest.fixture
def index_copy(hash_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the HashEmbedder index that a test may damage or rebuild."""
    target = tmp_path / "index"
    shutil.copytree(hash_index_dir, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    # One torch thread: with two on this 2-core machine, any other busy process (a parallel test run,
    # a server) makes each query wait on a descheduled worker, about 0.5 s instead of 20 ms.
    return SentenceTransformerEmbedder(threads=1)


@pytest.fixture(scope="session")
def model_index_dir(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, embedder: SentenceTransformerEmbedder
) -> Path:
    index_dir = tmp_path_factory.mktemp("model-index")
    report = index_corpus(corpus_dir, index_dir, embedder=embedder)
    assert not report.skipped and report.problems == []
    return index_dir


@pytest.fixture(scope="session")
def model_engine(model_index_dir: Path, embedder: SentenceTransformerEmbedder) -> Engine:
    return Engine(load_index(model_index_dir, model=embedder.name), embedder)
