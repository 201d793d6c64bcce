"""The cross-encoder: reads a question against a candidate and scores whether the candidate answers it.

The embedder compares a question and a passage embedded apart; this model
reads the two together, one word piece beside the other, so it can tell the
sentence that answers from a neighbour that only shares its words. It is
all-MiniLM-L6-v2 fine-tuned with a one-logit head by ``python -m
fitting.reader`` on the fit sets' candidates, and ships inside the package
(``qa/models/reader/``: the ONNX graph with int8 weights, the tokenizer and
the card that records how it was trained). Nothing is downloaded. It reads a
candidate after the headings above it (``read_as``).

Two speeds, as for the embedder (``qa.onnx_embed``): ``quantized`` runs the
graph's matrix products in int8 (dynamic quantization, at load), the default;
otherwise the int8 weights are turned back into floats and the arithmetic is
float. The scorer (``qa.scorer``) uses its logit as a feature of the few best
candidates only.

``threads`` is the cores one call may use: with int8 arithmetic, that many
pairs are read at once, each on one core (onnxruntime runs a session from
several threads; a pair is too short for one read to use two cores well);
with float arithmetic, the batch's matrix products use that many.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.defaults import DEFAULT_READER_TOKENS
from qa.errors import ModelError

READER_DIR = Path(str(resources.files("qa") / "models" / "reader"))


def read_as(text: str, headings: str) -> str:
    """What the cross-encoder reads of a candidate: the headings above it (``qa.features.candidate_headings``),
    then its text; a sentence of a statute says little of what it governs without its section's title.

    Example:
        >>> read_as("(1) In general. An alien may apply.", "§ 1158. Asylum › (a) Authority to apply")
        '§ 1158. Asylum › (a) Authority to apply: (1) In general. An alien may apply.'
        >>> read_as("Text at the top.", "")
        'Text at the top.'
    """
    return f"{headings}: {text}" if headings else text


class Reader:
    """The cross-encoder in ``folder`` (``model.onnx`` and ``tokenizer.json``) on onnxruntime.

    Example:
        >>> reader = Reader()  # doctest: +SKIP
        >>> reader.score("How many fusion centers are there?", ["There are about 80 fusion centers."])  # doctest: +SKIP
        array([3.1], dtype=float32)
    """

    def __init__(
        self,
        folder: Path = READER_DIR,
        *,
        max_tokens: int = DEFAULT_READER_TOKENS,
        quantized: bool = True,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime  # type: ignore[import-untyped]  # noqa: F401  # ships no type hints; checked here
        except ImportError as exc:
            raise ModelError("the cross-encoder needs onnxruntime: pip install onnxruntime==1.32.0") from exc
        graph = folder / "model.onnx"
        if not graph.is_file():
            raise ModelError(f"no cross-encoder in {folder}: train one with python -m fitting.reader")
        from qa.onnx_embed import cpu_session, dynamic_graph

        source: str | bytes = dynamic_graph(graph) if quantized else str(graph)
        self._session: Any = cpu_session(source, 1 if quantized else threads)
        self._tokenizer = self.tokenizer_of(folder / "tokenizer.json", max_tokens)
        workers = threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="qa-reader") if quantized and workers > 1 else None
        self.max_tokens = max_tokens
        self.quantized = quantized

    @staticmethod
    def tokenizer_of(path: Path, max_tokens: int) -> Any:
        """The WordPiece tokenizer at ``path``, cutting a (question, candidate) pair to ``max_tokens`` in all
        (from the longer side) and padding a batch to its longest pair."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.enable_truncation(max_tokens, strategy="longest_first")
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return tokenizer

    @staticmethod
    def encode(
        tokenizer: Any, pairs: Sequence[tuple[str, str]]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Word-piece ids, attention mask and segment ids of ``pairs`` (question first), as the model reads them."""
        encodings = tokenizer.encode_batch(list(pairs))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        return ids, mask, types

    def score(self, question: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The logit of each text answering ``question`` (higher: likelier).

        Quantized, a call's activations share one scale, so each pair is read alone (several at once on
        ``threads`` cores): its score never depends on the others. Otherwise they are read in one batch.
        """
        pairs = [(question, text) for text in texts]
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if not self.quantized:
            return self._read(pairs)
        if self._pool is None or len(pairs) == 1:
            return np.concatenate([self._read([pair]) for pair in pairs])
        return np.concatenate(list(self._pool.map(lambda pair: self._read([pair]), pairs)))

    def _read(self, pairs: Sequence[tuple[str, str]]) -> npt.NDArray[np.float32]:
        ids, mask, types = self.encode(self._tokenizer, pairs)
        (logits,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        out: npt.NDArray[np.float32] = logits.reshape(-1).astype(np.float32)
        return out


def reader_for(candidates: int, max_tokens: int, quantized: bool, threads: int | None = None) -> Reader | None:
    """The shipped cross-encoder for these settings (``QA_READER_*``), or None when it rereads no candidate."""
    return load_reader(max_tokens, quantized, threads) if candidates > 0 else None


@cache
def load_reader(max_tokens: int = DEFAULT_READER_TOKENS, quantized: bool = True, threads: int | None = None) -> Reader:
    """The shipped cross-encoder, loaded once per process for each set of settings."""
    return Reader(READER_DIR, max_tokens=max_tokens, quantized=quantized, threads=threads)
