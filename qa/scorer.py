"""The fitted answer scorer: ranks candidates, gives the confidence, and says why it refused.

Two fitted parts, both linear over the standardised ``qa.features`` rows:

* the **ranker**, a conditional logit: each candidate's logit, and the
  softmax over one question's candidates is the chance that each is the
  answer, given that one is. The best candidate is the answer.
* the **confidence**, a logistic regression over the best candidate's
  features plus two facts about the ranking (the best candidate's softmax
  share and its logit's margin over the next): the chance that the quote
  holds the answer, with unanswerable questions counted as wrong. Below the
  engine's ``min_score`` the answer is "not in these documents".

Both are fitted by ``python -m fitting`` and stored as JSON inside the
package, one file per embedding model (never a pickle). A refusal names the
feature that pulled the confidence down most: the most negative term of the
confidence's logit against the average question's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.features import COLUMN, FEATURES
from qa.question import Profile
from qa.tokens import tokenize

FORMAT = 1
# The model whose weights serve an embedding model that has none of its own.
FALLBACK_MODEL = "all-MiniLM-L6-v2"

NO_ANSWER = "no passage in these documents answers the question"
# What a refusal says when this feature pulled its confidence down most.
_REASONS = {
    "type_missing": "no passage gives the {answer_type} asked for",
    "attribute_missing": "no passage mentions the {attribute} asked about",
    "missing_weight": "no passage uses {missing}",
    "passage_missing": "the closest passage does not use {missing}",
    "dated_elsewhere": "the closest passage is about another period",
    "coverage": "no passage uses the question's words",
    "context_coverage": "no passage uses the question's words",
    "similarity": "no passage is close in meaning to the question",
    "window": "no passage is close in meaning to the question",
    "passage_similarity": "no passage is close in meaning to the question",
    "share": "several passages answer about equally well, none clearly",
    "margin": "several passages answer about equally well, none clearly",
    "reader": "no passage, read with the question, answers it",
    "ranking": "no passage, read with the question, answers it",
}
_TYPE_WORDS = {"date": "date", "quantity": "number", "person": "person", "organisation": "organisation",
               "acronym": "expansion", "place": "place", "reason": "reason", "none": "answer"}  # fmt: skip


# Hard rules: the best candidate having one of these features is refused whatever its confidence, with
# this reason. The fit's ablation (python -m fitting) shows the scorer does not learn them from data
# where they are rare, and that each refuses unanswerable questions at almost no cost in right answers.
HARD_RULES = {
    "unknown_names": "these documents never mention {unknown}",
    "dated_elsewhere": "the closest passage is about another period",
}


def hard_rule(row: npt.NDArray[np.float32]) -> str | None:
    """The first hard rule (``HARD_RULES``) the best candidate's feature row breaks, or None."""
    return next((name for name in HARD_RULES if row[COLUMN[name]] > 0), None)


# The two facts about the ranking that the confidence reads besides the best candidate's features.
RANKING_FEATURES = ("share", "margin")
# The columns the reread (``qa.selection.reread``) adds to a candidate's features: its first ranking logit
# less the question's best, and the cross-encoder's logit (``qa.reader``).
READER_FEATURES = ("ranking", "reader")
# Where a reranker's row holds the cross-encoder's logit.
READER_COLUMN = len(FEATURES) + READER_FEATURES.index("reader")


@dataclass(frozen=True, slots=True)
class AnswerModel:
    """Fitted weights of the ranker and of the confidence (see the module docstring)."""

    model: str
    features: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    rank_weights: npt.NDArray[np.float64]
    confidence_mean: npt.NDArray[np.float64]  # of the features, then share and margin, over best candidates
    confidence_scale: npt.NDArray[np.float64]
    confidence_weights: npt.NDArray[np.float64]  # len(features) + 2
    confidence_bias: float
    card: dict[str, Any]
    # The best two candidates are quoted together when adjacent and within this in logit (qa.selection).
    merge_margin: float = 0.0
    # A reranker (features FEATURES + READER_FEATURES) was fitted on each question's ``reread`` best
    # candidates of the first ranking; 0 for a first ranker.
    reread: int = 0

    def standard(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        result: npt.NDArray[np.float64] = (matrix.astype(np.float64) - self.mean) / self.scale
        return result

    def logits(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Each candidate's ranking logit (higher is a likelier answer)."""
        result: npt.NDArray[np.float64] = self.standard(matrix) @ self.rank_weights
        return result

    def confidence_inputs(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Each candidate's confidence inputs: its features, then its share and margin, standardised over the
        best candidates of the fit (so a term is a pull against the average answer's).

        A candidate's share is its softmax over the question's candidates; its margin is its logit less the
        best other candidate's (0 when it is alone).
        """
        logits = self.logits(matrix)
        if not len(logits):
            return np.zeros((0, len(self.features) + len(RANKING_FEATURES)))
        shares = np.exp(logits - logits.max())
        shares /= shares.sum()
        order = np.sort(logits)[::-1]
        runner_up = np.where(logits >= order[0], order[1] if len(order) > 1 else order[0], order[0])
        raw = np.hstack([matrix.astype(np.float64), shares[:, None], (logits - runner_up)[:, None]])
        result: npt.NDArray[np.float64] = (raw - self.confidence_mean) / self.confidence_scale
        return result

    def confidences(self, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Each candidate's confidence, were it chosen as the answer."""
        z = self.confidence_inputs(matrix) @ self.confidence_weights + self.confidence_bias
        result: npt.NDArray[np.float64] = np.round(1.0 / (1.0 + np.exp(-np.clip(z, -700, 700))), 4)
        return result

    def terms(self, inputs: npt.NDArray[np.float64]) -> dict[str, float]:
        """Each term of the confidence's logit for one candidate's ``confidence_inputs`` row.

        Inputs are standardised, so a term is the feature's pull against the average question's
        (positive pushes towards answering).
        """
        names = (*self.features, *RANKING_FEATURES)
        return {name: float(w * x) for name, w, x in zip(names, self.confidence_weights, inputs, strict=True)}


def _floats(values: Any) -> list[float]:
    return [round(float(v), 8) for v in values]


def to_record(model: AnswerModel) -> dict[str, Any]:
    """The JSON form of a model (what ``load_model`` reads)."""
    return {
        "format": FORMAT,
        "model": model.model,
        "features": list(model.features),
        "mean": _floats(model.mean),
        "scale": _floats(model.scale),
        "rank_weights": _floats(model.rank_weights),
        "confidence_mean": _floats(model.confidence_mean),
        "confidence_scale": _floats(model.confidence_scale),
        "confidence_weights": _floats(model.confidence_weights),
        "confidence_bias": round(float(model.confidence_bias), 8),
        "merge_margin": model.merge_margin,
        **({"reread": model.reread} if model.reread else {}),
        "card": model.card,
    }


def from_record(record: dict[str, Any]) -> AnswerModel:
    """The model a JSON record describes.

    Raises:
        ValueError: If the record is of another format or names other features than ``qa.features.FEATURES``
            (followed by ``READER_FEATURES`` for a reranker).
    """
    if record.get("format") != FORMAT:
        raise ValueError(f"answer model format {record.get('format')!r}; this version reads {FORMAT}")
    reread = int(record.get("reread", 0))
    if tuple(record["features"]) != (FEATURES + READER_FEATURES if reread else FEATURES):
        raise ValueError("answer model features differ from qa.features.FEATURES: refit with python -m fitting")

    width = len(record["features"])
    lengths = {"mean": width, "scale": width, "rank_weights": width, "confidence_mean": width + 2,
               "confidence_scale": width + 2, "confidence_weights": width + 2}  # fmt: skip

    def array(key: str) -> npt.NDArray[np.float64]:
        values = np.asarray(record[key], dtype=np.float64)
        if values.shape != (lengths[key],):
            raise ValueError(f"answer model {key} has shape {values.shape}; expected ({lengths[key]},)")
        return values

    return AnswerModel(
        model=str(record["model"]),
        features=tuple(record["features"]),
        mean=array("mean"),
        scale=array("scale"),
        rank_weights=array("rank_weights"),
        confidence_mean=array("confidence_mean"),
        confidence_scale=array("confidence_scale"),
        confidence_weights=array("confidence_weights"),
        confidence_bias=float(record["confidence_bias"]),
        card=dict(record.get("card", {})),
        merge_margin=float(record["merge_margin"]),
        reread=reread,
    )


def weights_name(model: str, *, reranker: bool = False) -> str:
    """The file name of a model's weights inside ``qa/models``: its first ranker's, or its reranker's."""
    return f"answer-{'reranker' if reranker else 'scorer'}-{model}.json"


@cache
def load_model(model: str = FALLBACK_MODEL, *, reranker: bool = False) -> AnswerModel:
    """The shipped weights for embedding model ``model`` (its reranker's, which read the cross-encoder's
    score, when ``reranker``), or the fallback model's when it has none."""
    folder = resources.files("qa") / "models"
    path = folder / weights_name(model, reranker=reranker)
    if not path.is_file():
        path = folder / weights_name(FALLBACK_MODEL, reranker=reranker)
    return from_record(json.loads(path.read_text(encoding="utf-8")))


def words_of(question: str, tokens: frozenset[str]) -> str:
    """The question's words, as typed, whose tokens are in ``tokens`` (quoted, comma-separated)."""
    words = [w for w in re.findall(r"[\w’'-]+", question) if any(t in tokens for t in tokenize(w))]
    return ", ".join(f"“{w}”" for w in dict.fromkeys(words))


def refusal_reason(
    model: AnswerModel,
    inputs: npt.NDArray[np.float64] | None,
    asked: Profile,
    absent: frozenset[str],
    rule: str | None = None,
) -> str:
    """Why a question was refused, in words: unknown names first, then a hard rule, else the feature
    that pulled the confidence down most.

    Args:
        model: The scorer.
        inputs: The best candidate's ``confidence_inputs`` row; None when nothing was retrieved.
        asked: The question's profile.
        absent: The question's tokens that the best candidate's passage lacks, for the message.
        rule: The hard rule that refused it (``hard_rule``), if one did.
    """
    if asked.unknown:
        return HARD_RULES["unknown_names"].format(unknown=", ".join(f"“{name}”" for name in asked.unknown))
    if inputs is None:
        return NO_ANSWER
    if rule is not None:
        return HARD_RULES[rule]
    worst, term = min(model.terms(inputs).items(), key=lambda item: item[1])
    if term >= 0 or worst not in _REASONS:
        return NO_ANSWER
    return _REASONS[worst].format(
        answer_type=_TYPE_WORDS[asked.answer_type],
        attribute=words_of(asked.text, frozenset(asked.attribute)) or "thing",
        missing=words_of(asked.text, absent) or "some of them",
    )
