"""A self-contained HTML report of an evaluation: tables, charts (inline PNG) and every failure."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

from qa.evaluate import EvalResult, ItemResult

_KEYS = (
    "containment", "containment_top3", "exact_match", "f1", "median_answer_chars", "section_accuracy",
    "quote_exactness", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "citation_precision",
    "citation_recall", "abstention_precision", "abstention_recall", "abstention_f1", "false_refusal_rate",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
)  # fmt: skip


def _png(figure: object) -> str:
    """The figure as an inline PNG image: no external asset and no URL in the page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", dpi=110)  # type: ignore[attr-defined]  # a Figure
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="latency histogram and evidence score distributions" src="data:image/png;base64,{encoded}">'


def _charts(results: Sequence[EvalResult], threshold: float | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, scores) = plt.subplots(1, 2, figsize=(10, 3.2))
    for result in results:
        latency.hist([r.latency_ms for r in result.items], bins=30, alpha=0.6, label=result.mode)
    latency.set_xlabel("latency per question (ms)")
    latency.legend()
    hybrid = next((r for r in results if r.mode == "hybrid"), results[0])
    scores.hist([r.evidence for r in hybrid.items if not r.item.unanswerable], bins=30, alpha=0.6, label="answerable")
    scores.hist([r.evidence for r in hybrid.items if r.item.unanswerable], bins=30, alpha=0.6, label="unanswerable")
    if threshold is not None:
        scores.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    scores.set_xlabel(f"evidence score ({hybrid.mode})")
    scores.legend()
    image = _png(fig)
    plt.close(fig)
    return image


def _failure_row(r: ItemResult) -> str:
    cells = [
        r.item.question,
        "(unanswerable)" if r.item.unanswerable else " | ".join(r.item.answers),
        "(abstained)" if r.abstained else (r.answer or ""),
        r.section,
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
        + "</tr>"
        for key in _KEYS
    )
    sections = []
    for result in results:
        failures = [r for r in result.items if is_failure(r)]
        inexact = [c for r in result.items for c in r.citations if not c["exact"]]
        body = "".join(_failure_row(r) for r in failures) or "<tr><td colspan=4>none</td></tr>"
        sections.append(
            f"<h2>Failures: {html.escape(result.mode)} ({len(failures)})</h2>"
            f"<p>Citations whose quote differs from the text at its offsets: {len(inexact)}</p>"
            "<table><tr><th>question</th><th>expected</th><th>got</th><th>cited section</th></tr>"
            f"{body}</table>"
        )
    style = (
        "body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    )
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{style}</style><h1>{html.escape(title)}</h1>"
        f"<table><tr><th>metric</th>{head}</tr>{rows}</table>{_charts(results, threshold)}{''.join(sections)}</html>"
    )
