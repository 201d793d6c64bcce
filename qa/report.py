"""A self-contained HTML report of an evaluation: tables, charts (inline PNG) and every failure.

The summary table says in one line what each figure measures. The charts are the latency
histogram, the confidence of answerable and unanswerable questions, and the reliability diagram
(share right against confidence, per bin), each titled. Then each mode's failures, folded; each
lists the features that decided it: the largest terms of its confidence
(``qa.scorer.AnswerModel.terms``).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

from qa.evaluate import EvalResult, ItemResult
from qa.metrics import reliability_bins

_KEYS = (
    "containment", "span_coverage", "containment_top3", "containment_answers3", "exact_match", "f1",
    "median_answer_chars",
    "section_accuracy",
    "quote_exactness", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "citation_precision",
    "citation_recall", "abstention_precision", "abstention_recall", "abstention_f1", "false_refusal_rate",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ece",
)  # fmt: skip
# One line on what each figure measures, shown beside it.
METRIC_HELP = {
    "containment": "answerable questions whose answer holds a gold answer",
    "span_coverage": "... whose answer covers half of a gold span where the gold has it (else: containment)",
    "containment_top3": "answerable questions with a gold answer in one of the first three citations",
    "containment_answers3": "answerable questions with a gold answer in one of three answers (answers=3, --distinct)",
    "exact_match": "SQuAD exact match of the answer: a whole sentence against a short span is 0 by construction",
    "f1": "SQuAD token F1 of the answer against the gold answer (low where gold answers are short spans)",
    "median_answer_chars": "median length of the answers given, in characters",
    "section_accuracy": "answerable questions whose first citation names a gold section (gold sets that list them)",
    "quote_exactness": "citations whose quote is exactly the document's text at its offsets",
    "recall@1": "answerable questions with a gold passage first among the retrieved",
    "recall@5": "... among the first five",
    "recall@10": "... among the first ten",
    "mrr@10": "mean reciprocal rank of the first gold passage (0 past the tenth)",
    "ndcg@10": "mean nDCG of the gold passages in the first ten (binary relevance)",
    "citation_precision": "citations of answered questions that hold a gold answer",
    "citation_recall": "answerable questions with at least one citation holding a gold answer",
    "abstention_precision": "refusals that were of unanswerable questions",
    "abstention_recall": "unanswerable questions refused",
    "abstention_f1": "harmonic mean of the two above",
    "false_refusal_rate": "answerable questions refused",
    "latency_p50_ms": "time per question, model warm: median",
    "latency_p95_ms": "... 95th percentile",
    "latency_p99_ms": "... 99th percentile",
    "ece": "expected calibration error of confidence against being right (10 bins; 0 is perfect)",
}
# Terms shown per failure: the strongest this many, by size.
DECIDING_TERMS = 3


def _png(figure: object) -> str:
    """The figure as an inline PNG image: no external asset and no URL in the page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", dpi=110)  # type: ignore[attr-defined]  # a Figure
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="latency, confidence and reliability charts" src="data:image/png;base64,{encoded}">'


def _charts(results: Sequence[EvalResult], threshold: float | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, scores, reliability) = plt.subplots(1, 3, figsize=(15, 3.6))
    for result in results:
        latency.hist([r.latency_ms for r in result.items], bins=30, alpha=0.6, label=result.mode)
    latency.set_title("Latency per question, by mode")
    latency.set_xlabel("latency per question (ms)")
    latency.legend()
    hybrid = next((r for r in results if r.mode == "hybrid"), results[0])
    scores.hist([r.evidence for r in hybrid.items if not r.item.unanswerable], bins=30, alpha=0.6, label="answerable")
    scores.hist([r.evidence for r in hybrid.items if r.item.unanswerable], bins=30, alpha=0.6, label="unanswerable")
    if threshold is not None:
        scores.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    scores.set_title("Confidence of answerable and unanswerable questions")
    scores.set_xlabel(f"confidence ({hybrid.mode})")
    scores.legend()
    bins = reliability_bins([r.evidence for r in hybrid.items], [r.right for r in hybrid.items])
    reliability.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    reliability.plot([b[0] for b in bins], [b[1] for b in bins], marker="o", label=f"{hybrid.mode}")
    for confidence, share, _, count in bins:
        reliability.annotate(str(count), (confidence, share), textcoords="offset points", xytext=(4, -10), fontsize=8)
    reliability.set_title("Reliability: share right against confidence")
    reliability.set_xlabel("confidence (bins of 0.1; count beside each point)")
    reliability.set_ylabel("share right")
    reliability.legend()
    image = _png(fig)
    plt.close(fig)
    return image


def deciding_terms(terms: dict[str, float], n: int = DECIDING_TERMS) -> str:
    """The ``n`` largest terms of a confidence, signed ("missing_weight -1.92, similarity +0.61").

    Example:
        >>> deciding_terms({"similarity": 0.61, "missing_weight": -1.92, "heading": 0.05, "length": -0.2})
        'missing_weight -1.92, similarity +0.61, length -0.20'
    """
    strongest = sorted(terms.items(), key=lambda item: -abs(item[1]))[:n]
    return ", ".join(f"{name} {value:+.2f}" for name, value in strongest)


def _failure_row(r: ItemResult) -> str:
    cells = [
        r.item.question,
        "(unanswerable)" if r.item.unanswerable else " | ".join(r.item.answers),
        "(abstained)" if r.abstained else (r.answer or ""),
        r.section,
        f"{r.confidence:.2f}: {deciding_terms(r.terms)}",
        "not reread" if r.reader is None else f"{r.reader:+.2f}",
    ]
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def is_failure(r: ItemResult) -> bool:
    """Wrong answer, wrong section, wrongly refused or wrongly answered."""
    if r.item.unanswerable:
        return not r.abstained
    return r.abstained or not r.contained or r.section_ok is False


def render_report(title: str, results: Sequence[EvalResult], threshold: float | None = None) -> str:
    """The HTML report, with no external assets."""
    head = "".join(f"<th>{html.escape(r.mode)}</th>" for r in results)
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th>"
        + "".join(f"<td>{r.aggregate.get(key, 0):.3f}</td>" for r in results)
        + f"<td class=help>{html.escape(METRIC_HELP.get(key, ''))}</td></tr>"
        for key in _KEYS
    )
    sections = []
    for result in results:
        failures = [r for r in result.items if is_failure(r)]
        inexact = [c for r in result.items for c in r.citations if not c["exact"]]
        body = "".join(_failure_row(r) for r in failures) or "<tr><td colspan=6>none</td></tr>"
        sections.append(
            f"<details><summary><h2>Failures: {html.escape(result.mode)} ({len(failures)})</h2></summary>"
            f"<p>Citations whose quote differs from the text at its offsets: {len(inexact)}</p>"
            "<table><tr><th>question</th><th>expected</th><th>got</th><th>cited section</th>"
            "<th>confidence: the features that decided it</th><th>cross-encoder logit</th></tr>"
            f"{body}</table></details>"
        )
    style = (
        "body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
        ".help{color:#555}summary h2{display:inline}summary{cursor:pointer;margin:1em 0}"
    )
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{style}</style><h1>{html.escape(title)}</h1>"
        f"<h2>Summary</h2><table><tr><th>metric</th>{head}<th>what it measures</th></tr>{rows}</table>"
        f"{_charts(results, threshold)}<p>Failures by mode, folded: open one to read its questions.</p>"
        f"{''.join(sections)}</html>"
    )
