"""Fixtures for the reliability tests: faults, hostile input, deadlines, access, load.

* ``figure(section, **values)``: records a figure (kills made, examples tried, inputs refused...). With
  ``RELIABILITY_ARTIFACTS=DIR`` set, the figures are written to ``DIR/tests.json`` at the end of the
  session, where ``python -m reliability.report`` reads them; otherwise they are kept in memory only.
* Known bugs are the tests marked ``xfail`` (strict, so a fixed bug fails its marker): each one that ran
  is recorded under ``known_bugs`` with its reason, and the report lists exactly those.
* ``hash_engine``: an Engine over the HashEmbedder index of the default corpus (from tests/conftest.py).
* ``make_app(**settings)``: an app over a private copy of that index, HashEmbedder, lifespan not started.

``QA_*`` variables of the calling shell are cleared, so every setting a test sees is one it set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.main import create_app
from qa.config import Settings
from qa.embed import HashEmbedder
from qa.engine import Engine, engine_of
from qa.index import VectorIndex

ARTIFACTS = os.environ.get("RELIABILITY_ARTIFACTS")
_FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session", autouse=True)
def _no_qa_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("QA_"):
                patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def figure() -> Callable[..., None]:
    def record(section: str, **values: Any) -> None:
        _FIGURES.setdefault(section, {}).update(values)

    return record


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("xfail")
        if marker is not None and "strict" not in marker.kwargs:
            item.add_marker(pytest.mark.xfail(*marker.args, **marker.kwargs, strict=True))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A test that failed as its xfail marker expects is a known bug: record it with its reason."""
    if report.when == "call" and hasattr(report, "wasxfail"):
        _FIGURES.setdefault("known_bugs", {})[report.nodeid] = report.wasxfail


def pytest_sessionfinish(session: pytest.Session) -> None:
    if ARTIFACTS and _FIGURES:
        path = Path(ARTIFACTS) / "tests.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.pop("known_bugs", None)  # this run's xfails only
        merged.update(_FIGURES)
        path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def hash_engine(hash_index: VectorIndex) -> Engine:
    """The engine the test servers run over the index: the default settings, cross-encoder included."""
    return engine_of(hash_index, HashEmbedder(), Settings())


@pytest.fixture
def make_app(index_copy: Path) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        return create_app(Settings(**{"index_dir": index_copy, **overrides}), embedder=HashEmbedder())

    return make
