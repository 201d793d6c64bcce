"""The embedder a model setting names: the factory, apart from the embedders themselves.

``qa.embed`` holds the embedders on torch (and the HashEmbedder for tests), ``qa.onnx_embed`` those on
onnxruntime; this module picks one, so neither has to import the other.
"""

from __future__ import annotations

import logging

from qa.defaults import DEFAULT_MODEL, ONNX_MODELS
from qa.embed import Embedder, SentenceTransformerEmbedder
from qa.errors import ModelError

log = logging.getLogger(__name__)


def load_embedder(model: str = DEFAULT_MODEL, *, threads: int | None = None) -> Embedder:
    """The embedder a model setting names: ``ONNX_MODELS`` run on onnxruntime, anything else on torch; the
    default model embeds its questions with its own weights exported to onnxruntime (``qa.onnx_embed``:
    the same vectors to within 1e-6, in about half the time), or on torch if the export fails.

    Raises:
        ModelError: If the model cannot be found or loaded.
    """
    from qa.onnx_embed import OnnxEmbedder

    if model in ONNX_MODELS:
        return OnnxEmbedder(model, threads=threads)
    questions = None
    if model == DEFAULT_MODEL:
        try:
            questions = OnnxEmbedder(model, threads=threads)
        except ModelError as exc:
            log.warning("questions are embedded on torch: %s", exc)
    return SentenceTransformerEmbedder(model, threads=threads, questions=questions)
