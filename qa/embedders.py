"""The embedder a model setting names: the factory, apart from the embedders themselves.

``qa.embed`` holds the embedders on torch (and the HashEmbedder for tests), ``qa.onnx_embed`` those on
onnxruntime; this module picks one, so neither has to import the other.
"""

from __future__ import annotations

from qa.defaults import DEFAULT_MODEL, ONNX_MODELS
from qa.embed import Embedder, SentenceTransformerEmbedder


def load_embedder(model: str = DEFAULT_MODEL, *, threads: int | None = None) -> Embedder:
    """The embedder a model setting names: ``ONNX_MODELS`` run on onnxruntime, anything else on torch.

    Raises:
        ModelError: If the model cannot be found or loaded.
    """
    if model in ONNX_MODELS:
        from qa.onnx_embed import OnnxEmbedder

        return OnnxEmbedder(model, threads=threads)
    return SentenceTransformerEmbedder(model, threads=threads)
