"""``python -m fitting``: fit the answer scorer, print leave-one-dataset-out figures, write the weights.

    python -m fitting                  # fit from fitting/tables/, print the report, write qa/models/...json
    python -m fitting --check          # fit and compare with the shipped weights; exit 1 if they differ
    python -m fitting --tables [SET]   # rebuild candidate tables first (needs ../shared and the model)

The report has, for each set left out, the scorer fitted on the other five
beside the hand-set weights it replaced, both on the same candidates; then an
ablation (each feature group dropped, refitted, left-out figures averaged
over the sets); then, once the tables hold cross-encoder scores, the reranker,
the gate, the sets with gold offsets measured by the span each quote covers
(``half_report``) and the calibration floor; then the final fit on all six sets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from fitting.fit import (
    MAX_GATE_LOSS,
    MAX_RIGHT_LOST,
    Figures,
    Fold,
    Gated,
    baseline_figures,
    by_half,
    choose_gate,
    choose_threshold,
    fit,
    fit_reranker,
    gated_figures,
    leave_one_out,
    leave_one_out_gated,
    leave_one_out_reranker,
    reranker_folds,
    reread_table,
)
from fitting.sets import SET_NAMES, available
from fitting.tables import (
    Table,
    build_table,
    kept_scores,
    load_table,
    reader_sha256,
    save_table,
    save_texts,
    table_sha256,
    tables_dir,
    texts_dir,
)
from qa.defaults import DEFAULT_MODEL, DEFAULT_READER_CANDIDATES
from qa.features import FEATURES
from qa.metrics import CALIBRATION_BINS, calibration_floor
from qa.reader import READER_DIR
from qa.scorer import HARD_RULES, AnswerModel, to_record, weights_name

MODELS = Path(__file__).resolve().parent.parent / "qa" / "models"
# Feature groups the ablation drops one at a time.
GROUPS = {
    "similarity": ("similarity", "window", "similarity_gap", "passage_similarity"),
    "coverage": ("coverage", "context_coverage", "coverage_gap", "neighbour_coverage"),
    "answer type": ("type_found", "type_missing"),
    "attribute": ("attribute_found", "attribute_missing"),
    "missing words": ("passage_missing", "missing_weight", "unknown_names"),
    "retrieval": ("fused_rank", "lexical", "heading"),
    "shape": ("length", "first_unit", "leads_in"),
    "dates": ("dated_elsewhere",),
}

# The default model's tables' texts, which the cross-encoder is trained on (fitting.reader).
TEXTS = texts_dir(DEFAULT_MODEL)

# The numbers of candidates the report's ablation rereads.
READ_COUNTS = (1, 2, 4)
# The calibration target the report measures each set against, and the draws of its floor.
ECE_TARGET = 0.05
CALIBRATION_DRAWS = 500
HEADER = ["picked right", "containment", "top-3", "abstention", "near misses refused", "false refusals", "ECE"]
# The columns ``_mean`` averages, in its order.
MEAN_HEADER = [HEADER[0], HEADER[1], HEADER[3], HEADER[4], HEADER[6]]


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def fitted_model(tables: list[Table], model: str, held: dict[str, Figures] | None = None) -> AnswerModel:
    """The scorer fitted on every table, with its card: the tables' sha256, the threshold chosen on all of
    them (``min_score``, which ``qa.defaults.DEFAULT_MIN_SCORE`` must equal), the left-out figures
    (``held``, computed when None)."""
    held = leave_one_out(tables, model=model) if held is None else held
    fitted = fit(tables, model=model)
    card = {
        "fitted_by": "python -m fitting",
        "tables": {t.name: table_sha256(t) for t in tables},
        "min_score": choose_threshold(fitted, tables),
        "max_right_lost": MAX_RIGHT_LOST,
        "leave_one_out": {name: _numbers(f) for name, f in held.items()},
    }
    return dataclasses.replace(fitted, card=card)


def fitted_reranker(
    tables: list[Table], model: str, first: AnswerModel, held: dict[str, Figures], count: int
) -> AnswerModel:
    """The reranker fitted on every table over ``first``'s ``count`` best candidates, with its card (as
    ``fitted_model``'s, plus the sha256 of the cross-encoder's scores and of the model that gave them, and
    the gate chosen on all of them, ``reread_below``, which ``qa.defaults.DEFAULT_READER_BELOW`` must
    equal)."""
    _, second = fit_reranker(tables, model=model, count=count, first=first)
    threshold = choose_threshold(second, [reread_table(t, first, count) for t in tables])
    card = {
        "fitted_by": "python -m fitting",
        "tables": {t.name: table_sha256(t) for t in tables},
        "reader_scores": {t.name: reader_sha256(t) for t in tables},
        "reader_model": json.loads((READER_DIR / "card.json").read_text(encoding="utf-8")).get("model_sha256"),
        "min_score": threshold,
        "max_right_lost": MAX_RIGHT_LOST,
        "reread_below": choose_gate(tables, [Gated.of(t, first, second) for t in tables], threshold),
        "max_gate_loss": MAX_GATE_LOSS,
        "leave_one_out": {name: _numbers(f) for name, f in held.items()},
    }
    return dataclasses.replace(second, card=card)


def reader_report(tables: list[Table], model: str, held: dict[str, Figures], read: dict[str, Figures]) -> str:
    """Left-out figures with the cross-encoder (``read``) beside those without (``held``), then the
    ablation over the number of candidates it rereads."""
    rows = [[t.name, str(read[t.name].n), *_pairs(read[t.name], held[t.name])] for t in tables]
    out = [
        "With the cross-encoder: the first ranker's best candidates reread (QA_READER_CANDIDATES, "
        f"{DEFAULT_READER_CANDIDATES}) and rescored",
        "by the reranker; each set's cross-encoder scores come from a model trained without it "
        "(python -m fitting.reader).",
        "Each cell is with / without the cross-encoder, same candidates, both fitted on the other sets.",
        "",
        _table(rows, ["left out", "questions", *HEADER]),
        "",
        "Candidates reread: mean over the left-out sets",
        "",
    ]
    ablation = [["0 (off)", *[f"{v:.3f}" for v in _mean(held.values())]]]
    for count in READ_COUNTS:
        figures = (
            read if count == DEFAULT_READER_CANDIDATES else leave_one_out_reranker(tables, model=model, count=count)
        )
        ablation.append([str(count), *[f"{v:.3f}" for v in _mean(figures.values())]])
    out.append(_table(ablation, ["reread", *MEAN_HEADER]))
    return "\n".join(out)


def gate_report(tables: list[Table], gated: dict[str, tuple[Figures, Figures, float, float]]) -> str:
    """Left-out figures when only the questions whose first confidence is below the gate are reread,
    beside rereading every question (``gated``: ``leave_one_out_gated``, the gate, threshold and both rankers
    chosen on the other sets)."""
    rows = [
        [t.name, f"{gated[t.name][3]:.2f}", f"{gated[t.name][2]:.3f}", *_pairs(gated[t.name][0], gated[t.name][1])]
        for t in tables
    ]
    return "\n".join(
        [
            "Rereading only the questions whose first answer's confidence is below the gate (QA_READER_BELOW),",
            f"the lowest that keeps all but {MAX_GATE_LOSS:.1%} of the right answers and refusals of rereading every",
            "question on the sets it is chosen on. reread: the share of the left-out set's questions reread.",
            "Each cell is below the gate / every question reread, all chosen on the other sets.",
            "",
            _table(rows, ["left out", "gate", "reread", *HEADER]),
        ]
    )


def half_report(folds: Sequence[Fold], gated: dict[str, tuple[Figures, Figures, float, float]]) -> str:
    """For the sets whose gold gives offsets, the default configuration's left-out figures counting an answer
    right when it covers half a gold span (``fitting.fit.by_half``), beside those counting it right when it
    holds a whole gold answer (``gated``: ``leave_one_out_gated`` over the same ``folds``)."""
    rows = []
    for f in folds:
        halved = by_half(f.held)
        if halved is None:
            continue
        whole = gated[f.held.name][0]
        half, _ = gated_figures(halved, Gated.of(halved, f.first, f.second), gated[f.held.name][3], f.threshold)
        rows.append([f.held.name, str(whole.n), f"{whole.picked:.3f} / {half.picked:.3f}",
                     f"{whole.containment:.3f} / {half.containment:.3f}"])  # fmt: skip
    return "\n".join(
        [
            "Gold spans: a quote counted right when it holds a whole gold answer / when it covers at least half",
            "of a gold span's characters (a span may cross a sentence's end). Default configuration, each set left",
            "out; sets whose gold gives no offsets are the same either way.",
            "",
            _table(rows, ["left out", "questions", "picked right", "containment"]),
        ]
    )


def calibration_report(tables: list[Table], figures: dict[str, Figures], draws: int = CALIBRATION_DRAWS) -> str:
    """Each left-out set's ECE beside its floor: what a perfectly calibrated confidence scores on the same
    questions (``qa.metrics.calibration_floor``, outcomes drawn from the confidences themselves)."""
    rows = []
    for t in tables:
        f = figures[t.name]
        floor = calibration_floor(f.confidences, draws=draws)
        below = sum(e <= ECE_TARGET for e in floor) / len(floor)
        rows.append([t.name, str(f.n), f"{f.ece:.3f}", f"{float(np.mean(floor)):.3f}", f"{below:.2f}"])
    return "\n".join(
        [
            "Calibration in the default configuration (rereading below the gate), each set left out: its ECE",
            f"({CALIBRATION_BINS} bins), and the ECE of a perfectly calibrated confidence on the same questions over "
            f"{draws} draws",
            "(each question right with the chance its confidence gives): the mean, and the share of draws at or",
            f"below {ECE_TARGET}. On a small set sampling alone keeps the ECE above {ECE_TARGET}.",
            "",
            _table(rows, ["left out", "questions", "ECE", "perfectly calibrated: mean ECE", f"share <= {ECE_TARGET}"]),
        ]
    )


def _numbers(figures: Figures) -> dict[str, float | None]:
    """A Figures row as JSON numbers (None where a set has no such questions)."""
    values = [float(v) if v != "nan" else None for v in figures.row()]
    return dict(zip(HEADER, values, strict=True))


def report(tables: list[Table], model: str, held: dict[str, Figures]) -> str:
    """The leave-one-dataset-out report (``held``: ``leave_one_out`` of ``tables``), with the hand-set
    baseline and the ablation."""
    rows = []
    for t in tables:
        f, b = held[t.name], baseline_figures(t)
        rows.append([t.name, str(f.n), str(f.n_unanswerable), *_pairs(f, b)])
    out = [
        "Leave one dataset out: fitted on the other sets (threshold chosen on them too), measured on the one left",
        "out; each cell is fitted / hand-set weights (refusing below evidence 0.45), on the same candidates.",
        "picked right: the best candidate holds an answer, refused or not; containment: answered and right;",
        "abstention: genuine unanswerable questions refused; near misses: questions asked without their",
        "answer's passages, refused; ECE over the genuine questions.",
        "",
        _table(rows, ["left out", "questions", "unanswerable", *HEADER]),
        "",
        "Ablation: a feature group dropped (or the hard rule off), refitted; mean over the left-out sets",
        "",
    ]
    full = _mean(held.values())
    ablation = [["(none)", *[f"{v:.3f}" for v in full]]]
    variants: list[tuple[str, list[int] | None, tuple[str, ...]]] = [
        (group, [i for i, n in enumerate(FEATURES) if n not in names], tuple(HARD_RULES))
        for group, names in GROUPS.items()
    ]
    for rule in HARD_RULES:
        variants.append((f"hard rule {rule}", None, tuple(r for r in HARD_RULES if r != rule)))
    for label, keep, rules in variants:
        mean = _mean(leave_one_out(tables, model=model, columns=keep, rules=rules).values())
        ablation.append([label, *[f"{v:.3f} ({v - base:+.3f})" for v, base in zip(mean, full, strict=True)]])
    out.append(_table(ablation, ["dropped", *MEAN_HEADER]))
    return "\n".join(out)


def model_report(tables: list[Table], model: str, held: dict[str, Figures]) -> str:
    """``model``'s left-out figures (``held``) beside the default model's, each scorer fitted on its own
    model's tables: the issue's rule is that the default is the fastest model whose figures are no worse."""
    default = [load_table(t.name) for t in tables]
    theirs = leave_one_out(default, model=DEFAULT_MODEL)
    rows = [[t.name, str(held[t.name].n), *_pairs(held[t.name], theirs[t.name])] for t in tables]
    mean = [f"{a:.3f} / {b:.3f}" for a, b in zip(_mean(held.values()), _mean(theirs.values()), strict=True)]
    return "\n".join(
        [
            f"Against the default model: each cell is {model} / {DEFAULT_MODEL}, each fitted on its own model's",
            "tables with the set left out (the first ranker, without the cross-encoder).",
            "",
            _table(rows, ["left out", "questions", *HEADER]),
            "",
            "mean (picked right, containment, abstention, near misses refused, ECE): " + ", ".join(mean),
        ]
    )


def _pairs(f: Figures, b: Figures) -> list[str]:
    return [f"{x} / {y}" if x != "nan" else "-" for x, y in zip(f.row(), b.row(), strict=True)]


def _mean(figures: Iterable[Figures]) -> tuple[float, ...]:
    """Means over sets of: picked right, containment, abstention, near misses refused, ECE (nan-free)."""
    values = list(figures)

    def mean(xs: list[float]) -> float:
        kept = [x for x in xs if not np.isnan(x)]
        return float(np.mean(kept)) if kept else float("nan")

    return (
        mean([f.picked for f in values]),
        mean([f.containment for f in values]),
        mean([f.abstention_recall for f in values]),
        mean([f.near_miss_refusals for f in values]),
        mean([f.ece for f in values]),
    )


def same_weights(a: dict[str, object], b: dict[str, object], tolerance: float = 1e-6) -> bool:
    """Whether two model records hold the same features, tables, threshold and merge margin, and weights within
    ``tolerance`` (a fit on another machine's BLAS may differ in the last digits)."""
    keys = ("mean", "scale", "rank_weights", "confidence_mean", "confidence_scale", "confidence_weights")
    close = all(np.allclose(a[k], b[k], atol=tolerance, rtol=0) for k in keys)  # type: ignore[arg-type]
    bias = abs(float(a["confidence_bias"]) - float(b["confidence_bias"])) <= tolerance  # type: ignore[arg-type]
    card_a, card_b = a["card"], b["card"]
    same_card = all(card_a[k] == card_b[k] for k in ("tables", "min_score"))  # type: ignore[index]
    return a["features"] == b["features"] and a["merge_margin"] == b["merge_margin"] and close and bias and same_card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fitting", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tables", nargs="*", metavar="SET", help="rebuild these candidate tables first (all when none named)"
    )
    parser.add_argument("--check", action="store_true", help="compare with the shipped weights instead of writing them")
    parser.add_argument(
        "--model", default=os.environ.get("QA_MODEL", DEFAULT_MODEL),
        help="embedding model (another than the default keeps its tables in the cache: fitting.tables.tables_dir)",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print the report, write no weights")
    args = parser.parse_args(argv)
    folder = tables_dir(args.model)
    if args.tables is not None:
        from qa.embedders import load_embedder

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        embedder = load_embedder(args.model)
        for name in args.tables or SET_NAMES:
            if not available(name):
                print(f"{name}: its source is absent (../shared/datasets), table kept", file=sys.stderr)
                continue
            table, texts = kept_scores(*build_table(name, embedder), folder, texts_dir(args.model))
            saved = save_table(table, folder)
            print(f"{name}: table written to {saved}, texts to {save_texts(name, texts, texts_dir(args.model))}",
                  file=sys.stderr)  # fmt: skip
    tables = [load_table(name, folder) for name in SET_NAMES if (folder / f"{name}.npz").is_file()]
    held = leave_one_out(tables, model=args.model)
    model = fitted_model(tables, args.model, held)
    written = {MODELS / weights_name(args.model): to_record(model)}
    scored = all(t.reader is not None for t in tables)
    if scored:
        folds = reranker_folds(tables, model=args.model, count=DEFAULT_READER_CANDIDATES)
        read = leave_one_out_reranker(tables, model=args.model, count=DEFAULT_READER_CANDIDATES, folds=folds)
        second = fitted_reranker(tables, args.model, model, read, DEFAULT_READER_CANDIDATES)
        written[MODELS / weights_name(args.model, reranker=True)] = to_record(second)
    else:
        print(
            "the tables hold no cross-encoder scores (python -m fitting.reader): reranker not fitted", file=sys.stderr
        )
    if args.check:
        differ = []
        for path, record in written.items():
            shipped = json.loads(path.read_text(encoding="utf-8"))
            same = same_weights(shipped, json.loads(json.dumps(record)))
            print(f"{path}: {'the same as' if same else 'DIFFERENT from'} what the fit produces")
            differ += [] if same else [path]
        return 1 if differ else 0
    print(report(tables, args.model, held))
    if args.model != DEFAULT_MODEL:
        print("\n" + model_report(tables, args.model, held))
    if scored:
        print("\n" + reader_report(tables, args.model, held, read))
        gated = leave_one_out_gated(tables, model=args.model, count=DEFAULT_READER_CANDIDATES, folds=folds)
        print("\n" + gate_report(tables, gated))
        print("\n" + half_report(folds, gated))
        print("\n" + calibration_report(tables, {name: g[0] for name, g in gated.items()}))
    if args.no_write:
        return 0
    MODELS.mkdir(parents=True, exist_ok=True)
    for path, record in written.items():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        print(f"\nweights written to {path}; threshold chosen on all sets: {record['card']['min_score']}")
        names, ranks = record["features"], record["rank_weights"]
        weights = sorted(zip(names, ranks, strict=True), key=lambda p: -abs(p[1]))
        print("weights (standardised): " + ", ".join(f"{n} {w:+.2f}" for n, w in weights if w))
    return 0


if __name__ == "__main__":
    sys.exit(main())
