"""Every benchmark script runs end to end on tiny sizes (``--smoke``) and prints the keys its tables need.

Not a timing gate: timings live in ``benchmarks/RESULTS.md``. The scripts run
in this process (``main()`` with its command line) so imports and the model
are loaded once; ``http_load`` still starts a real ``qa serve`` on loopback.
Peers (txtai, Haystack) are left out here: CI installs ``.[dev]``, not ``.[bench]``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from qa.index import HNSW_EF_SEARCH


def run_script(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    monkeypatch.setattr(sys, "argv", [f"benchmarks.{name}", "--smoke", "--json", *extra])
    importlib.import_module(f"benchmarks.{name}").main()
    return json.loads(capsys.readouterr().out)


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


def test_latency_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_script("latency", monkeypatch, capsys)
    stages = {"embed", "dense", "lexical", "fusion", "extraction", "total"}
    assert [row["passages"] for row in payload["rows"]] == [16, 2000]
    for row in payload["rows"]:
        assert set(row["stages"]) == stages
        assert {"p50", "p95", "p99"} <= set(row["stages"]["total"])
        assert row["exact_ms"]["n"] > 0
    hnsw = payload["rows"][1]["hnsw"]
    assert set(hnsw["sweep"]) == {"256", "512", "1024", "1536", "2048"} and hnsw["efSearch"] == HNSW_EF_SEARCH
    assert all(0 <= s["recall@10"] <= 1 for s in hnsw["sweep"].values())


def test_quantized_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_script("quantized", monkeypatch, capsys)
    kinds = [row["faiss"] for row in payload["rows"]]
    assert kinds == ["IndexFlatIP", "IndexScalarQuantizer", "IndexHNSWFlat", "IndexHNSWSQ"]
    flat, eight_bit = payload["rows"][:2]
    assert flat["recall@10"] == eight_bit["recall@10"] == 1.0  # rescoring makes the 8-bit order exact
    assert eight_bit["mb"] < flat["mb"]


def test_build_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_script("build", monkeypatch, capsys)
    assert payload["passages"] == 16 and payload["texts"] >= payload["passages"]
    assert {"raw_texts_per_s", "pipeline_texts_per_s", "pipeline_passages_per_s", "overhead"} <= set(payload)


def test_embed_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_script("embed", monkeypatch, capsys)
    assert set(payload["idle"]) == set(payload["busy"]) == {"hash"}
    assert payload["idle"]["hash"]["n"] == payload["questions"]


@pytest.mark.model
def test_abstention_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.abstention import THRESHOLDS
    from benchmarks.common import XQUAD

    payload = run_script("abstention", monkeypatch, capsys, "--folds", "2")
    rows = payload["rows"]
    assert [row["min_score"] for row in rows] == list(THRESHOLDS)
    assert (payload["gold_answerable"], payload["gold_unanswerable"]) == (48, 12)
    for key in ("xquad_right_refused", "gold_answerable_refused", "gold_unanswerable_refused"):
        counts = [row[key] for row in rows]
        assert counts == sorted(counts)  # a higher threshold never refuses fewer
    default = next(row for row in rows if row["min_score"] == payload["default_min_score"])
    assert default["gold_answerable_refused"] == 0
    if XQUAD.is_file():
        assert payload["xquad_questions"] > 0 and 0 < payload["near_misses"] <= payload["xquad_questions"]
        assert all(0.0 <= row["near_misses_refused"] <= 1.0 for row in rows)


@pytest.mark.model
def test_peers_smoke_ours_only(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.common import XQUAD

    if not XQUAD.is_file():
        pytest.skip(f"{XQUAD} is absent")
    payload = run_script("peers", monkeypatch, capsys, "--systems", "ours")
    assert list(payload["systems"]) == ["ours (torch)"]
    assert {"recall@1", "recall@5", "p50", "p95"} <= set(payload["systems"]["ours (torch)"])


@pytest.mark.model
def test_http_load_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_script("http_load", monkeypatch, capsys)
    assert [level["concurrency"] for level in payload["levels"]] == [1, 4]
    assert all(level["errors"] == 0 and level["requests"] == 6 for level in payload["levels"])
    assert payload["cold_start_s"] > 0 and payload["in_process"]["n"] == 6


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
