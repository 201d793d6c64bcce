"""Every benchmark script runs end to end on tiny sizes (``--smoke``), and its figures mean what its tables say.

Not a timing gate: timings live in ``benchmarks/RESULTS.md``. What is checked is what the tiny
inputs fix: counts equal the questions asked and the passages of the default corpus, memory is
the bytes the vectors take, recall on an index small enough to search whole is exact, and the
figures keep the relations their definitions imply (percentiles in order, recall@5 >= recall@1,
refusals growing with the threshold, rates that are counts over the same timings). The scripts
run in this process (``main()`` with its command line) so imports and the model are loaded once;
``http_load`` still starts a real ``qa serve`` on loopback. Peers (txtai, Haystack) are left out
here: CI installs ``.[dev]``, not ``.[bench]``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from qa.chunk import chunk_document, retrieval_text, unit_texts
from qa.index import HNSW_EF_SEARCH, RESCORE_FACTOR
from qa.tokens import tokenize
from qa.types import Document, Passage

DIM = 384  # the HashEmbedder(dim=384) the smoke runs use, and the real model's width
MIB = 1 << 20


def run_script(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    monkeypatch.setattr(sys, "argv", [f"benchmarks.{name}", "--smoke", "--json", *extra])
    importlib.import_module(f"benchmarks.{name}").main()
    return json.loads(capsys.readouterr().out)


def assert_summary(figures: dict[str, float], samples: int, what: str) -> None:
    """A ``benchmarks.common.summary`` of ``samples`` timings: nearest-rank percentiles are samples, in order.

    Below 100 samples the p99 is the largest sample, so the mean cannot exceed it.
    """
    assert figures["n"] == samples, f"{what}: {figures['n']} timings, expected one per question ({samples})"
    assert 0 <= figures["p50"] <= figures["p95"] <= figures["p99"], f"{what}: percentiles out of order: {figures}"
    assert samples > 100 or figures["mean"] <= figures["p99"], f"{what}: mean above the largest sample: {figures}"


@pytest.fixture(scope="module")
def corpus_passages(corpus_document: Document) -> list[Passage]:
    """The passages of the default corpus: what the smoke runs index."""
    return chunk_document(corpus_document)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Benchmarks cache indexes; tests keep theirs apart from a developer's."""
    import benchmarks.common
    import benchmarks.corpora
    import benchmarks.run_all

    cache = tmp_path_factory.getbasetemp() / "bench-cache"
    monkeypatch.setenv("QA_BENCH_CACHE", str(cache))  # for the scripts run_all starts
    for module in (benchmarks.common, benchmarks.corpora, benchmarks.run_all):
        monkeypatch.setattr(module, "CACHE", cache)


def test_latency_smoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], corpus_passages: list[Passage]
) -> None:
    """Rows for the whole default corpus and 2,000 synthetic passages; every stage timed once per question.

    The flat index holds 4 bytes a vector component; the corpus row's vocabulary is the distinct
    tokens of its passages, and the synthetic rows' rare words make theirs larger; HNSW at the
    engine's efSearch finds the exact top 10 of 2,000 vectors, and a wider search never finds fewer.
    """
    from benchmarks.latency import EF_SEARCH_SWEEP, STAGES, questions

    # Without the cross-encoder, whatever an earlier test left of QA_* (the API tests clear it for the session).
    monkeypatch.setenv("QA_READER_CANDIDATES", "0")
    payload = run_script("latency", monkeypatch, capsys)
    asked = payload["questions"]
    assert asked == 12, "--smoke asks 12 questions"
    rows = payload["rows"]
    assert [(row["name"], row["passages"], row["faiss"]) for row in rows] == [
        ("corpus (all, real)", len(corpus_passages), "IndexFlatIP"),
        ("2,000 (synthetic)", 2000, "IndexFlatIP"),
    ]
    for row in rows:
        assert list(row["stages"]) == list(STAGES)
        assert row["reread_share"] == 0.0, "nothing is reread without the cross-encoder"
        for stage, figures in row["stages"].items():
            assert_summary(figures, asked, f"{row['name']}, {stage}")
        assert_summary(row["exact_ms"], min(50, asked), f"{row['name']}, exact search")
        assert_summary(row["scans"]["idf_max_ms"], 20, f"{row['name']}, max(idf)")
        assert row["dense_mb"] == round(row["passages"] * DIM * 4 / MIB, 1), "float32 vectors: 4 bytes a component"

    corpus, synthetic = rows
    vocabulary = {token for p in corpus_passages for token in tokenize(retrieval_text(p))}
    assert corpus["scans"]["vocabulary"] == len(vocabulary)
    assert synthetic["scans"]["vocabulary"] > len(vocabulary), "rare words grow the synthetic vocabulary"
    # BM25 scoring is timed only for questions that share a token with the corpus.
    scored = sum(any(token in vocabulary for token in tokenize(q)) for q in questions(asked))
    assert_summary(corpus["scans"]["bm25_get_scores_ms"], scored, "corpus, bm25 get_scores")

    assert "hnsw" not in corpus, "HNSW is measured only at --hnsw-at sizes (2,000 in smoke)"
    assert synthetic["hnsw_mb"] > synthetic["dense_mb"], "an HNSW index holds the same vectors plus its graph"
    hnsw = synthetic["hnsw"]
    assert hnsw["efSearch"] == HNSW_EF_SEARCH
    assert list(hnsw["sweep"]) == [str(ef) for ef in EF_SEARCH_SWEEP]
    for ef, figures in hnsw["sweep"].items():
        assert_summary(figures, asked, f"HNSW efSearch {ef}")
    recalls = [figures["recall@10"] for figures in hnsw["sweep"].values()]
    assert recalls == sorted(recalls), f"a wider search found fewer of the exact top 10: {recalls}"
    assert hnsw["sweep"][str(HNSW_EF_SEARCH)]["recall@10"] == 1.0, "the default efSearch misses exact neighbours"


def test_quantized_smoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], corpus_passages: list[Passage]
) -> None:
    """The default corpus in each index kind: float32 takes 4 bytes a component, 8-bit takes 1, a graph adds more.

    With 16 passages every index returns them all, and the engine rescores the 8-bit shortlist
    with the full vectors, so each kind's first 10 are the exact top 10. Float indexes are not
    rescored: the engine's first 10 are the index's own.
    """
    payload = run_script("quantized", monkeypatch, capsys)
    n = len(corpus_passages)
    assert payload["rescore_factor"] == RESCORE_FACTOR
    rows = payload["rows"]
    kinds = ["IndexFlatIP", "IndexScalarQuantizer", "IndexHNSWFlat", "IndexHNSWSQ"]
    assert [(row["faiss"], row["passages"]) for row in rows] == [(kind, n) for kind in kinds]
    flat, eight_bit, hnsw, hnsw_eight_bit = rows
    assert flat["mb"] == round(n * DIM * 4 / MIB, 3), "float32 vectors: 4 bytes a component"
    assert eight_bit["mb"] == round(n * DIM / MIB, 3), "8-bit vectors: 1 byte a component"
    assert hnsw["mb"] > flat["mb"] and hnsw_eight_bit["mb"] > eight_bit["mb"], "a graph adds to the codes"
    for row in rows:
        assert row["recall@10"] == 1.0, f"{row['faiss']}: the engine's first 10 are not the exact top 10"
        assert_summary(row["dense_ms"], 12, f"{row['faiss']}, dense search")
    for row in (flat, hnsw):
        assert row["raw_recall@10"] == row["recall@10"], f"{row['faiss']}: float vectors are not rescored"


def test_build_smoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], corpus_passages: list[Passage]
) -> None:
    """A build of the default corpus embeds each passage's retrieval text and each of its answer units once.

    Smoke runs once and builds no child index; the rates are those counts over the same timings,
    so texts/s over passages/s is texts over passages, and the overhead is the raw rate over the
    pipeline's, less one.
    """
    payload = run_script("build", monkeypatch, capsys)
    passages = len(corpus_passages)
    texts = passages + sum(len(unit_texts(p)) for p in corpus_passages)
    assert (payload["files"], payload["passages"], payload["texts"]) == (1, passages, texts)
    assert [len(payload[key]) for key in ("raw_encode_s", "raw_in_calls_s", "pipeline_s")] == [1, 1, 1]
    assert payload["qa_index_child"] == {} and payload["disk_bytes_per_passage"] is None
    per_text, per_passage = payload["pipeline_texts_per_s"], payload["pipeline_passages_per_s"]
    ratio = texts / passages
    # Both rates are rounded to 0.1: the bound is that rounding, carried through the ratio.
    assert per_text == pytest.approx(per_passage * ratio, abs=0.05 * (1 + ratio))
    raw = payload["raw_texts_per_s"]
    assert 1 + payload["overhead"] == pytest.approx(raw / per_text, rel=0.05 / raw + 0.05 / per_text + 1e-4)


def test_turns_give_every_system_every_question_once_rotating_the_order() -> None:
    """``--block 2`` over 5 questions and two systems: each asks a block in a row, the second block starts
    with the other system, and the last block is what is left."""
    from benchmarks.common import turns

    assert [(name, list(asked)) for name, asked in turns(5, ["a", "b"], 2)] == [
        ("a", [0, 1]), ("b", [0, 1]), ("b", [2, 3]), ("a", [2, 3]), ("a", [4]), ("b", [4]),
    ]  # fmt: skip
    assert [(name, list(asked)) for name, asked in turns(2, ["a", "b", "c"])] == [
        ("a", [0]), ("b", [0]), ("c", [0]), ("b", [1]), ("c", [1]), ("a", [1]),
    ]  # fmt: skip


@pytest.mark.parametrize("block", ["1", "4"])
def test_embed_smoke(block: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each configuration (only the hash embedder in smoke) embeds every question once, idle and busy,
    interleaved or in turns."""
    payload = run_script("embed", monkeypatch, capsys, "--block", block)
    assert payload["questions"] == 10, "--smoke asks 10 questions"
    assert payload["block"] == int(block)
    assert list(payload["idle"]) == list(payload["busy"]) == ["hash"]
    assert_summary(payload["idle"]["hash"], 10, "idle")
    assert_summary(payload["busy"]["hash"], 10, "busy")
    assert "agreement" not in payload, "smoke loads no model, so no torch/ONNX agreement"


def xquad_first_articles(path: Path, articles: int) -> tuple[int, int]:
    """Paragraphs and questions of the first ``articles`` XQuAD articles: what the smoke runs ask."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"][:articles]
    paragraphs = [paragraph for article in data for paragraph in article["paragraphs"]]
    return len(paragraphs), sum(len(paragraph["qas"]) for paragraph in paragraphs)


@pytest.mark.model
def test_abstention_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Every gold question is asked; a higher ``min_score`` refuses more and keeps fewer right answers.

    Each row applies its threshold to the same evidences, so every right XQuAD answer is either
    kept (containment) or refused, in every row alike.
    """
    from benchmarks.abstention import THRESHOLDS
    from benchmarks.common import GOLD, XQUAD

    gold = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    unanswerable = sum(record["unanswerable"] for record in gold)
    payload = run_script("abstention", monkeypatch, capsys, "--folds", "2")
    rows = payload["rows"]
    assert [row["min_score"] for row in rows] == list(THRESHOLDS)
    assert (payload["gold_answerable"], payload["gold_unanswerable"]) == (len(gold) - unanswerable, unanswerable)
    for row in rows:
        assert 0 <= row["gold_answerable_refused"] <= payload["gold_answerable"]
        assert 0 <= row["gold_unanswerable_refused"] <= payload["gold_unanswerable"]
    for key in (
        "xquad_right_refused",
        "xquad_wrong_refused",
        "near_misses_refused",
        "gold_answerable_refused",
        "gold_unanswerable_refused",
    ):
        figures = [row[key] for row in rows]
        assert figures == sorted(figures), f"{key}: a higher threshold refused fewer: {figures}"
    containment = [row["xquad_containment"] for row in rows]
    assert containment == sorted(containment, reverse=True), f"a higher threshold kept more: {containment}"
    default = next(row for row in rows if row["min_score"] == payload["default_min_score"])
    assert default["gold_answerable_refused"] == 0
    asked = payload["xquad_questions"]
    if not XQUAD.is_file():
        assert (asked, payload["near_misses"]) == (0, 0)
        return
    assert asked == xquad_first_articles(XQUAD, 2)[1], "--smoke asks every question of the first two articles"
    assert 0 < payload["near_misses"] <= asked
    right = {round(row["xquad_containment"] * asked) + row["xquad_right_refused"] for row in rows}
    assert len(right) == 1, f"right answers kept + refused differ between thresholds: {right}"


@pytest.mark.model
def test_peers_smoke_ours_only(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Our system in process and over HTTP (a real ``qa serve`` of the same paragraphs) over the first two
    XQuAD articles' paragraphs, 8 questions.

    Recall@k is a share of those questions, and a paragraph among the first 1 is among the first 5.
    """
    from benchmarks.common import XQUAD

    if not XQUAD.is_file():
        pytest.skip(f"{XQUAD} is absent")
    payload = run_script("peers", monkeypatch, capsys, "--systems", "ours,ours-http")
    paragraphs, questions = xquad_first_articles(XQUAD, 2)
    asked = min(8, questions)
    assert (payload["paragraphs"], payload["questions"]) == (paragraphs, asked)
    names = ["ours (default model)", "ours (default model) + cross-encoder, over HTTP"]
    assert list(payload["systems"]) == names
    for name in names:
        ours = payload["systems"][name]
        assert_summary(ours, asked, name)
        for k in ("recall@1", "recall@5"):
            found = ours[k] * asked
            assert found == pytest.approx(round(found), abs=1e-3), f"{k} = {ours[k]} is not a share of {asked}"
        assert 0 <= ours["recall@1"] <= ours["recall@5"] <= 1
    assert payload["systems"][names[1]]["recall@5"] > 0, "the server's citations map to no paragraph"


@pytest.mark.model
def test_http_load_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Six requests at each of concurrency 1 and 4, none failing, and as many in-process asks.

    ``c`` workers busy for the whole run at most: throughput <= c / mean latency.
    """
    payload = run_script("http_load", monkeypatch, capsys)
    levels = payload["levels"]
    assert [level["concurrency"] for level in levels] == [1, 4]
    for level in levels:
        where = f"concurrency {level['concurrency']}"
        assert (level["requests"], level["errors"], level["error_samples"]) == (6, 0, []), where
        assert_summary(level, 6, where)
        assert 0 < level["throughput_rps"] <= level["concurrency"] * 1000 / level["mean"] * 1.01 + 0.01, where
    assert_summary(payload["in_process"], 6, "in-process Engine.ask")
    assert payload["index_build_s"] == 0.0, "smoke: qa serve builds the missing index itself, nothing is timed"
    assert payload["cold_start_s"] > 0 and payload["threads"] == 1


def test_run_all_renders_saved_figures(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """run_all keeps the notes under its marker and renders each saved payload with its script's tables."""
    import benchmarks.run_all

    results = tmp_path / "RESULTS.md"
    results.write_text("# old\n<!-- notes -->\nKeep this.\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["run_all", "--smoke", "--only", "embed", "--output", str(results)])
    benchmarks.run_all.main()
    text = results.read_text(encoding="utf-8")
    assert "## Query embedding: model runtime and threads" in text and "| hash |" in text
    assert text.endswith("<!-- notes -->\nKeep this.\n")


def test_writes_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Segment writes add a small segment and a commit, each written document is its own first citation,
    one segment answers as itself, and every sustained write is acknowledged and found."""
    payload = run_script("writes", monkeypatch, capsys)
    (row,) = payload["writes"]
    assert row["answerable"] == "3/3" and row["segments_after"] == 4  # the corpus's segment and three writes
    assert_summary(row["segment_write_ms"], 3, "segment writes")
    assert_summary(row["whole_write_ms"], 1, "whole-index writes")
    # A segment write adds its vectors, its passages and a commit: a few KB beyond the vectors.
    assert row["new_vectors_kb"] < row["segment_write_kb_p50"] < row["new_vectors_kb"] + 64
    queries = payload["unmerged"]
    assert queries["segments"] == 1 and queries["identical_answers"] == f"{queries['questions']}/{queries['questions']}"
    load = payload["sustained"]
    assert (load["writes"], load["errors"], load["absent_at_end"], load["not_found_at_end"]) == (5, 0, 0, 0)
    assert_summary(load["write_ms"], 5, "sustained writes")


def test_resume_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A run killed once its journal names a segment is taken up by the rerun, which ends with the index of
    an uninterrupted run (documents, passages, sampled vectors and hits all equal). How many segments the
    killed run wrote depends on timing (tests/test_segments.py pins the taking up itself); on a fast machine
    the 300 passages can all be indexed between two looks at the journal, and the rerun then finds nothing
    to do, which the payload says."""
    payload = run_script("resume", monkeypatch, capsys)
    whole, killed, rerun, same = (payload[k] for k in ("uninterrupted", "killed", "rerun", "same"))
    assert (payload["passages"], whole["passages"], rerun["passages"]) == (300, 300, 300)
    assert whole["segments"] == 3  # 100 passages a segment in smoke runs
    if killed["finished_first"]:
        assert (rerun["segments"], rerun["resumed"]) == (0, 0)
    else:
        assert rerun["segments"] == 3
        assert killed["segments_written"] >= 1 and rerun["resumed"] in (0, 2, 4, 6)  # two files a segment
    assert same == {
        "documents": True, "passages": True, "vectors_sampled": True, "hits": "all of 10 queries", "segments": [3, 3]
    }  # fmt: skip


def test_resume_whole_only_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--whole-only runs only the uninterrupted build, for its time and memory at sizes where a kill and a
    rerun would take too long: its figures, no killed run, and a table that renders."""
    payload = run_script("resume", monkeypatch, capsys, "--whole-only")
    assert set(payload) == {"machine", "passages", "uninterrupted"}
    whole = payload["uninterrupted"]
    assert (whole["passages"], whole["segments"]) == (300, 3) and whole["peak_rss_mb"] > 0
    from benchmarks.resume import render

    assert "uninterrupted" in render(payload) and "killed" not in render(payload)


@pytest.mark.slow
def test_cluster_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The default corpus built in this process and on a two-node Ray cluster (the same texts), two questions
    to qa serve and qa serve --ray (the same answers, one timing each per question), and a fault run in
    which every answer is right or a 503."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    monkeypatch.setenv("QA_READER_CANDIDATES", "0")
    payload = run_script("cluster", monkeypatch, capsys)
    build, serving, faults = payload["build"], payload["serving"], payload["faults"]
    assert build["passages"] == 16 and build["texts"] == 43, "the default corpus: 16 passages, 43 texts"
    assert build["texts_per_passage"] == round(43 / 16, 2)
    assert [p["passages"] for p in build["projection"]] == [10_000_000] * 3 + [100_000_000] * 3
    assert serving["questions"] == 2 and serving["different_answers"] == 0
    for name in ("qa serve", "qa serve --ray"):
        assert_summary(serving["latency_ms"][name], 2, name)
    assert set(faults["outcomes"]) <= {"right", "503"} and faults["outcomes"].get("right", 0) > 0
    assert sum(faults["outcomes"].values()) == faults["requests"]


@pytest.mark.slow
def test_filters_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Filtered questions over tagged synthetic rows (the tags' shares of passages, exact recall), and two
    servers: three collections opened, and one collection holding as many passages."""
    monkeypatch.setenv("QA_READER_CANDIDATES", "0")
    payload = run_script("filters", monkeypatch, capsys)
    filters, collections = payload["filters"], payload["collections"]
    assert filters["passages"] == 2000
    rows = {row["filter"]: row for row in filters["rows"]}
    assert list(rows) == ["none", "p1", "p10", "p50"] and rows["none"]["share"] == 1.0
    # Every 100th, 10th and 2nd document is tagged; the first (the default corpus's one, 16 passages) carries all.
    assert rows["p1"]["share"] < rows["p10"]["share"] < rows["p50"]["share"] < 0.6
    assert all(row["recall_at_10"] == 1.0 for row in rows.values())
    for row in rows.values():
        assert_summary(row, 10, row["filter"])
    assert collections["collections"] == 3 and collections["collections_open"] == 3
    assert collections["one_passages"] == 30 and collections["ratio"] > 0


def test_verify_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """30 citations: the server's statuses are the client's own check's, and both are timed once per run."""
    monkeypatch.setenv("QA_READER_CANDIDATES", "0")
    payload = run_script("verify", monkeypatch, capsys)
    assert payload["citations"] == 30 and sum(payload["statuses"].values()) == 30
    assert payload["statuses"] == payload["client_statuses"]
    assert payload["statuses"]["gone"] >= 5  # every sixth names a missing document
    assert_summary(payload["verify_ms"], 2, "verify")
    assert_summary(payload["client_ms"], 2, "client")
