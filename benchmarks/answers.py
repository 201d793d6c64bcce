"""Same answers? The torch model against its two ONNX forms (int8, qint8) on the gold sets.

The gold sets are tests/data/gold.jsonl (the default corpus), XQuAD dev and
tests/data/uscode-title6.jsonl (US Code Title 6, from ../shared/datasets).
Each gold set is indexed in memory once per model (vectors from that model),
and ``qa.evaluate.evaluate`` asks every question. The table gives the
aggregate scores side by side and how many answers are identical: the same
quote (or both abstaining), the same first citation. This is the evidence
a change of the default model must show; it times nothing.

    python -m benchmarks.answers
    python -m benchmarks.answers --json
"""

from __future__ import annotations

import importlib.util
from typing import Any

from benchmarks.common import CORPUS, GOLD, ROOT, USCODE, XQUAD, emit, log, machine, parser, table

USCODE_GOLD = ROOT / "tests" / "data" / "uscode-title6.jsonl"

KEYS = ("containment", "containment_top3", "exact_match", "f1", "recall@1", "recall@5", "mrr@10",
        "quote_exactness", "abstention_f1", "false_refusal_rate")  # fmt: skip


def first_citation(result: Any) -> tuple[str, int, int] | None:
    """Where an answer's first citation points, or None without one."""
    first = result.citations[0] if result.citations else None
    return (first["document_id"], first["start"], first["end"]) if first else None


def gold_sets(smoke: bool) -> dict[str, tuple[list[Any], list[Any]]]:
    """Name -> (documents, gold items)."""
    from qa.gold import load_jsonl, load_squad
    from qa.ingest import load_corpus

    sets = {"gold.jsonl": (load_corpus(CORPUS)[0], load_jsonl(GOLD))}
    if smoke:
        return {name: (docs, items[:6]) for name, (docs, items) in sets.items()}
    if XQUAD.is_file():
        sets["xquad-en-dev"] = load_squad(XQUAD)
    else:
        log(f"{XQUAD} is absent: comparing without it")
    title6 = USCODE / "title06"
    if title6.is_dir():
        sets["uscode-title6.jsonl"] = (load_corpus(title6)[0], load_jsonl(USCODE_GOLD))
    else:
        log(f"{title6} is absent: comparing without it")
    return sets


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline
    from qa.build import build_index
    from qa.defaults import DEFAULT_MODEL, ONNX_MODELS
    from qa.embedders import load_embedder
    from qa.engine import Engine
    from qa.evaluate import evaluate

    offline()
    models = (DEFAULT_MODEL, *ONNX_MODELS)
    out: dict[str, Any] = {"machine": machine(), "models": list(models), "sets": {}}
    if importlib.util.find_spec("onnxruntime") is None:
        log("skipping: onnxruntime is not installed (pip install -e '.[bench]')")
        return out
    for name, (documents, items) in gold_sets(opts.smoke).items():
        results = {}
        for model in models:
            log(f"{name}: {len(items)} questions with {model}")
            embedder = load_embedder(model, threads=opts.threads)
            results[model] = evaluate(Engine(build_index(documents, embedder), embedder), items)
        reference = results[DEFAULT_MODEL].items
        out["sets"][name] = {
            "n": len(items),
            "aggregate": {m: {k: round(results[m].aggregate[k], 4) for k in KEYS} for m in models},
            "same_answer": {
                m: sum(x.answer == y.answer for x, y in zip(reference, results[m].items, strict=True)) for m in models
            },
            "same_first_citation": {
                m: sum(first_citation(x) == first_citation(y) for x, y in zip(reference, results[m].items, strict=True))
                for m in models
            },
            "differences": {
                m: [
                    {"question": x.item.question, DEFAULT_MODEL: x.answer, m: y.answer, "gold": list(x.item.answers)}
                    for x, y in zip(reference, results[m].items, strict=True)
                    if x.answer != y.answer
                ][:5]
                for m in models[1:]
            },
        }
    return out


def render(payload: dict[str, Any]) -> str:
    out = ""
    models = payload["models"]
    for name, s in payload["sets"].items():
        rows = [[k, *(s["aggregate"][m][k] for m in models)] for k in KEYS]
        rows.append(["identical answers", "", *(f"{s['same_answer'][m]}/{s['n']}" for m in models[1:])])
        rows.append(["identical first citation", "", *(f"{s['same_first_citation'][m]}/{s['n']}" for m in models[1:])])
        out += table(f"{name}: {s['n']} questions, hybrid", ["metric", *models], rows) + "\n"
    return out


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--threads", type=int, default=1, help="model threads")
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
