"""Default values of the settings, in one leaf module: configuration imports nothing of the pipeline.

Each is explained where it is defined; ``qa.config`` reads them, and so do the stages that use them.
"""

from __future__ import annotations

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# The same model on onnxruntime (qa.onnx_embed): its vectors differ slightly, so each has its own name.
# int8 weights, float arithmetic: the same answers as torch on the gold set, about half the query time.
ONNX_INT8_MODEL = "all-MiniLM-L6-v2-int8"
# int8 weights and int8 arithmetic (dynamic quantization): about a quarter of torch's query time.
ONNX_QINT8_MODEL = "all-MiniLM-L6-v2-qint8"
ONNX_MODELS = (ONNX_INT8_MODEL, ONNX_QINT8_MODEL)
# all-MiniLM-L6-v2 reads 256 word pieces (about 1,000 characters of English); 800 leaves room for the section path.
DEFAULT_MAX_CHARS = 800
# An answer whose confidence (the chance that it holds the answer, qa.scorer) is below this is withheld.
# Chosen by `python -m fitting` over its six sets: the highest threshold that withholds at most 3% of
# the right answers (fitting.fit.MAX_RIGHT_LOST); the shipped weights' card records it, and a test
# checks the two agree.
DEFAULT_MIN_SCORE = 0.13
# The cross-encoder (qa.reader) reads the question and a candidate up to this many word pieces in all:
# most candidates fit (a sentence and its run-on); longer ones are cut from the longer side.
DEFAULT_READER_TOKENS = 128
# It rereads only the scorer's best few candidates: this many (0 turns it off). Two, because rereading
# four costs twice the time for 0.012 more containment and fewer refusals (abstention 0.602 against 0.630)
# on the fit's left-out sets (python -m fitting's report).
DEFAULT_READER_CANDIDATES = 2
# ... and only for questions whose first answer's confidence is below this (1 rereads every question): the
# lowest gate that keeps all but 0.5% of the right answers and refusals rereading every question gives on
# the fit's six sets (fitting.fit.choose_gate); the reranker's card records it, and a test checks the two
# agree. Rereading is most of an answer's time, and a confident first answer is rarely changed by it.
DEFAULT_READER_BELOW = 0.7
# Distinct answers one question may ask for (``answers=n`` on ask, ``qa ask --answers``).
MAX_ANSWERS = 5
