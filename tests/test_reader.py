"""The shipped cross-encoder (``qa.reader``): its files, its scores against the trained model's, its inputs.

The card written by ``python -m fitting.reader`` records the trained torch model's logits on a few
fixed pairs (``fitting.reader.FIXTURE``); the exported ONNX graph must give the same within a stated
tolerance, and the same sign (answers / does not) wherever the trained logit is farther from 0 than that:
0.1 with float arithmetic (only the int8 rounding of the stored weights differs; 0.03 at most when
measured) and 0.75 with int8 arithmetic (activations rounded too, and how far that moves a logit depends on
the trained weights: 0.43 at most for the model of 2026-11-30, 0.64 for the first of 2026-12-02, 0.40 for
the one trained on AVX2 kernels that day, on logits of about ±2; that one's fixture holds a pair the trained
model scores -0.19 and int8 arithmetic +0.21, a sign no rounding this coarse can be held to).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from fitting.reader import FIXTURE, KERNELS, TRAIN_THREADS
from qa.defaults import DEFAULT_READER_TOKENS
from qa.errors import ModelError
from qa.features import HEADINGS_READ
from qa.reader import READER_DIR, Reader, load_reader, reader_for

CARD = json.loads((READER_DIR / "card.json").read_text(encoding="utf-8"))
FLOAT_TOLERANCE = 0.1
INT8_TOLERANCE = 0.75


def test_the_model_ships_inside_the_package_within_25_mb() -> None:
    """model.onnx, its tokenizer and its card are in qa/models/reader; the card's sha256 is the graph's."""
    graph = READER_DIR / "model.onnx"
    assert graph.stat().st_size <= 25_000_000
    assert (READER_DIR / "tokenizer.json").is_file()
    assert hashlib.sha256(graph.read_bytes()).hexdigest() == CARD["model_sha256"]
    assert CARD["settings"]["max_tokens"] == DEFAULT_READER_TOKENS
    assert CARD["settings"]["headings"] == HEADINGS_READ  # trained on candidates read as the engine reads them
    assert [(f["question"], f["text"]) for f in CARD["fixture"]] == list(FIXTURE)


def test_the_card_records_what_the_trained_bits_depend_on() -> None:
    """The shipped model was trained on the kernels and threads ``fitting.reader`` pins (AVX2, 2 threads),
    and its card names the library versions that trained, exported and run it."""
    environment = CARD["environment"]
    assert {key: environment[key] for key in KERNELS} == KERNELS
    assert environment["threads"] == TRAIN_THREADS
    assert {"torch", "transformers", "tokenizers", "onnx", "onnxruntime"} <= set(environment)


@pytest.mark.parametrize(("quantized", "tolerance"), [(False, FLOAT_TOLERANCE), (True, INT8_TOLERANCE)])
def test_exported_model_scores_the_fixture_like_the_trained_one(quantized: bool, tolerance: float) -> None:
    reader = Reader(quantized=quantized, threads=1)
    for item in CARD["fixture"]:
        (score,) = reader.score(item["question"], [item["text"]])
        assert abs(float(score) - item["logit"]) <= tolerance, (item["question"], item["text"], score, item["logit"])
        if abs(item["logit"]) > tolerance:
            assert (score > 0) == (item["logit"] > 0)


def test_the_sentence_that_answers_outscores_its_neighbour() -> None:
    """Of two sentences about Secure Communities, the one giving the number asked for scores higher."""
    (answer, neighbour) = load_reader().score(FIXTURE[0][0], [FIXTURE[0][1], FIXTURE[1][1]])
    assert answer > neighbour


def test_a_quantized_score_does_not_depend_on_its_batch() -> None:
    """Quantized, each pair is read alone: its score is the same with or without other candidates."""
    reader = load_reader()
    question, text = FIXTURE[2]
    alone = reader.score(question, [text])
    together = reader.score(question, ["A much longer and unrelated sentence about something else. " * 3, text])
    assert together[1] == alone[0]


def test_pairs_read_at_once_score_as_one_at_a_time() -> None:
    """Quantized, ``threads`` pairs are read at once from one session: the scores, in order, are exactly
    those of reading them one after another."""
    texts = [item[1] for item in FIXTURE] * 3
    question = FIXTURE[0][0]
    serial = Reader(threads=1).score(question, texts)
    reader = Reader(threads=3)
    read_on: set[str] = set()
    read = reader._read

    def recorded(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        read_on.add(threading.current_thread().name)
        return read(pairs)

    reader._read = recorded  # type: ignore[method-assign]
    parallel = reader.score(question, texts)
    assert parallel.tolist() == serial.tolist()
    assert len(set(serial.tolist())) == len(FIXTURE)
    assert read_on and all(name.startswith("qa-reader") for name in read_on), read_on


def test_float_scores_match_one_pair_at_a_time() -> None:
    """With float arithmetic pairs are read in one padded batch; the padding changes no score beyond 1e-4."""
    reader = Reader(quantized=False, threads=1)
    question = FIXTURE[0][0]
    texts = [FIXTURE[0][1], FIXTURE[1][1] * 4]
    batch = reader.score(question, texts)
    singles = np.array([reader.score(question, [t])[0] for t in texts])
    assert np.abs(batch - singles).max() < 1e-4


def test_long_inputs_are_cut_to_the_token_limit() -> None:
    """A 1,000-character question against a 20,000-character candidate reads within ``max_tokens``."""
    reader = Reader(max_tokens=32, quantized=False, threads=1)
    ids, mask, types = Reader.encode(reader._tokenizer, [("why " * 250, "word " * 4000)])
    assert ids.shape == (1, 32) and int(mask.sum()) == 32 and set(types[0].tolist()) == {0, 1}
    assert reader.score("why " * 250, ["word " * 4000]).shape == (1,)


def test_no_text_no_score() -> None:
    assert load_reader().score("anything?", []).shape == (0,)


def test_off_when_it_rereads_nothing() -> None:
    assert reader_for(0, DEFAULT_READER_TOKENS, True) is None
    assert reader_for(4, DEFAULT_READER_TOKENS, True) is load_reader(DEFAULT_READER_TOKENS, True, None)


def test_a_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no cross-encoder in .*python -m fitting.reader"):
        Reader(tmp_path)
