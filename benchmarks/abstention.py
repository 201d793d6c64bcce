"""Abstention: answers withheld when the corpus lacks them, against right answers lost, by ``min_score``.

Near misses are made from XQuAD dev: its paragraphs are dealt into ``--folds``
groups, and each group's questions are asked of an index built without that
group. The other paragraphs of the same article stay, so the topic is there
and the answer is not: a fair service says "not in these documents" instead
of quoting a neighbouring paragraph. The same questions asked of the whole
index are the answers abstention must keep, and the wrong answers it had
better withhold. The gold set's answerable and unanswerable questions are
counted too. ``DEFAULT_MIN_SCORE`` is chosen by ``python -m fitting``; this table shows
what other thresholds would trade on the engine itself.

Each question's confidence (``Engine.ask_detailed``'s evidence) is computed once and every
``min_score`` of the table is applied to the same evidences, so the rows
differ only in the threshold. A near miss whose closest quote still holds a
gold answer (the fact is stated twice in the article) is left out of the
near-miss share.

    python -m benchmarks.abstention
    python -m benchmarks.abstention --model all-MiniLM-L6-v2-qint8 --json
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import CORPUS, GOLD, XQUAD, default_engine, emit, log, machine, parser, table
from qa.defaults import DEFAULT_MIN_SCORE

# The thresholds compared, the fitted default always among them.
THRESHOLDS = tuple(sorted({0.05, 0.1, 0.15, 0.2, 0.3, 0.45, DEFAULT_MIN_SCORE}))
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question's evidence, and whether the quote it would answer with holds a gold answer."""

    evidence: float
    right: bool


def ask_all(engine: Any, items: Sequence[Any]) -> list[Outcome]:
    """Evidence and rightness of the would-be answer (the first citation, even when withheld) per question."""
    from qa.metrics import contains_answer

    out = []
    for item in items:
        asked = engine.ask_detailed(item.question)
        citations = asked.answer.citations
        quote = citations[0].quote if citations else None
        # A question a hard rule refused (qa.scorer.HARD_RULES) is refused at every threshold.
        hard = not asked.answer.answerable and asked.evidence >= engine.min_score
        evidence = 0.0 if hard else asked.evidence
        out.append(Outcome(evidence, bool(item.answers) and contains_answer(quote, item.answers)))
    return out


def paragraph_folds(data: list[dict[str, Any]], folds: int) -> dict[str, int]:
    """Question id -> the fold of its paragraph: paragraphs are dealt in file order, one to each fold in turn."""
    fold_of: dict[str, int] = {}
    number = 0
    for article in data:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                fold_of[str(qa["id"])] = number % folds
            number += 1
    return fold_of


def without_fold(data: list[dict[str, Any]], fold_of: dict[str, int], fold: int) -> list[dict[str, Any]]:
    """The SQuAD articles without the paragraphs of ``fold`` (articles left empty are dropped)."""
    kept = []
    for article in data:
        paragraphs = [
            p
            for p in article.get("paragraphs", [])
            if not any(fold_of[str(qa["id"])] == fold for qa in p.get("qas", []))
        ]
        if paragraphs:
            kept.append({**article, "paragraphs": paragraphs})
    return kept


def squad_documents(data: list[dict[str, Any]]) -> list[Any]:
    """The documents ``qa.gold.load_squad`` makes of these articles."""
    from qa.gold import load_squad

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "squad.json"
        path.write_text(json.dumps({"data": data}), encoding="utf-8")
        return load_squad(path)[0]


def near_misses(embedder: Any, path: Path, folds: int, articles: int | None) -> tuple[list[Outcome], list[Outcome]]:
    """Each XQuAD question asked of the whole index, and of the index without its paragraph's fold."""
    from qa.build import build_index
    from qa.gold import load_squad

    data = json.loads(path.read_text(encoding="utf-8"))["data"][:articles]
    fold_of = paragraph_folds(data, folds)
    items = [item for item in load_squad(path)[1] if item.id in fold_of]
    log(f"xquad: {len(items)} questions against the whole index")
    whole = ask_all(default_engine(build_index(squad_documents(data), embedder), embedder), items)
    held: dict[str, Outcome] = {}
    for fold in range(folds):
        asked = [item for item in items if fold_of[item.id] == fold]
        log(f"xquad: fold {fold + 1}/{folds}, {len(asked)} questions without their paragraphs")
        engine = default_engine(build_index(squad_documents(without_fold(data, fold_of, fold)), embedder), embedder)
        held |= dict(zip((item.id for item in asked), ask_all(engine, asked), strict=True))
    return whole, [held[item.id] for item in items]


def rows(
    whole: list[Outcome], held: list[Outcome], gold: list[Outcome], unanswerable: list[bool]
) -> list[dict[str, Any]]:
    """Per threshold: XQuAD containment, right answers lost, wrong ones withheld, near misses refused, gold refusals."""
    misses = [a for a in held if not a.right]
    wrong = [a for a in whole if not a.right]
    answerable_gold = [a for a, u in zip(gold, unanswerable, strict=True) if not u]
    unanswerable_gold = [a for a, u in zip(gold, unanswerable, strict=True) if u]
    out = []
    for threshold in THRESHOLDS:
        out.append({
            "min_score": threshold,
            "xquad_containment": round(sum(a.right and a.evidence >= threshold for a in whole) / max(1, len(whole)), 4),
            "xquad_right_refused": sum(a.right and a.evidence < threshold for a in whole),
            "xquad_wrong_refused": round(sum(a.evidence < threshold for a in wrong) / max(1, len(wrong)), 4),
            "near_misses_refused": round(sum(a.evidence < threshold for a in misses) / max(1, len(misses)), 4),
            "gold_answerable_refused": sum(a.evidence < threshold for a in answerable_gold),
            "gold_unanswerable_refused": sum(a.evidence < threshold for a in unanswerable_gold),
        })  # fmt: skip
    return out


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline
    from qa.build import build_index
    from qa.embedders import load_embedder
    from qa.gold import load_jsonl
    from qa.ingest import load_corpus

    offline()
    embedder = load_embedder(opts.model)
    items = load_jsonl(GOLD)
    log(f"gold: {len(items)} questions")
    gold = ask_all(default_engine(build_index(load_corpus(CORPUS)[0], embedder), embedder), items)
    whole: list[Outcome] = []
    held: list[Outcome] = []
    if XQUAD.is_file():
        whole, held = near_misses(embedder, XQUAD, opts.folds, 2 if opts.smoke else None)
    else:
        log(f"{XQUAD} is absent: gold questions only")
    return {
        "machine": machine(),
        "model": opts.model,
        "default_min_score": DEFAULT_MIN_SCORE,
        "xquad_questions": len(whole),
        "near_misses": sum(not a.right for a in held),
        "gold_answerable": sum(not i.unanswerable for i in items),
        "gold_unanswerable": sum(i.unanswerable for i in items),
        "rows": rows(whole, held, gold, [i.unanswerable for i in items]),
    }


def render(payload: dict[str, Any]) -> str:
    title = (
        f"{payload['model']}: XQuAD dev {payload['xquad_questions']} questions "
        f"({payload['near_misses']} near misses), gold {payload['gold_answerable']} answerable "
        f"+ {payload['gold_unanswerable']} unanswerable"
    )
    headers = ["min_score", "XQuAD containment", "right answers refused", "wrong answers withheld",
               "near misses refused", "gold answerable refused", "gold unanswerable refused"]  # fmt: skip
    body = [
        [
            f"**{r['min_score']:.2f}** (default)"
            if r["min_score"] == payload["default_min_score"]
            else f"{r['min_score']:.2f}",
            r["xquad_containment"],
            r["xquad_right_refused"],
            r["xquad_wrong_refused"],
            r["near_misses_refused"],
            f"{r['gold_answerable_refused']}/{payload['gold_answerable']}",
            f"{r['gold_unanswerable_refused']}/{payload['gold_unanswerable']}",
        ]
        for r in payload["rows"]
    ]
    return table(title, headers, body)


def main() -> None:
    from qa.defaults import DEFAULT_MODEL

    args = parser(__doc__ or "")
    args.add_argument("--model", default=DEFAULT_MODEL, help="embedding model setting (QA_MODEL)")
    args.add_argument("--folds", type=int, default=FOLDS, help="paragraph groups held out in turn")
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
