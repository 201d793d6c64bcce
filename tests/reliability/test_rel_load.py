"""The bounded load test (``python -m reliability.load --quick``) on a real ``qa serve``, and the soak's judge.

The quick run holds /v1/ask at concurrency 1, 8 and 32 for 4 s each with zero errors, then bursts over
a low QA_RATE_LIMIT: only 200s and 429s with Retry-After, no 5xx, CORS headers right throughout.
The full run (3 x 60 s) and the 10-minute soak are scripts; their last figures are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reliability.soak import judge

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.model
def test_quick_load_run_holds(tmp_path: Path, figure: Callable[..., None]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["RELIABILITY_ARTIFACTS"] = str(tmp_path)
    command = [sys.executable, "-m", "reliability.load", "--quick", "--index-dir", str(tmp_path / "index")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=480)
    assert result.returncode == 0, result.stderr[-4000:]
    figures: dict[str, Any] = json.loads((tmp_path / "load-quick.json").read_text())
    assert [p["concurrency"] for p in figures["phases"]] == [1, 8, 32]
    for phase in figures["phases"]:
        assert phase["ok"] > 0 and phase["errors"] == 0 and phase["failed_checks"] == {}
    limited = figures["rate_limited"]
    assert limited["server_5xx"] == 0 and set(limited["statuses"]) == {"200", "429"}
    assert figures["exit_code"] == 0 and figures["failures"] == []
    figure("load_quick", phases=figures["phases"], rate_limited=limited)


def _samples(rss: list[float], every: float = 5.0) -> list[dict[str, float]]:
    return [
        {"t": i * every, "rss_mib": r, "hwm_mib": max(rss[: i + 1]), "threads": 19, "fds": 18}
        for i, r in enumerate(rss)
    ]


def _run(rss: list[float], statuses: dict[str, int] | None = None) -> dict[str, Any]:
    return {"seconds": 5.0 * len(rss), "samples": _samples(rss), "statuses": statuses or {"200": 100}}


def test_soak_judge_passes_a_flat_run_after_warm_up() -> None:
    result = _run([400.0] * 12 + [700.0] * 108)  # the warm-up (first two minutes of ten) is not judged
    assert judge(result) == []
    assert (result["baseline_rss_mib"], result["final_rss_mib"], result["rss_growth_pct"]) == (700.0, 700.0, 0.0)


def test_soak_judge_fails_growth_over_5_percent() -> None:
    result = _run([700.0] * 24 + [700.0 + i for i in range(96)])
    assert judge(result) == ["RSS grew 11.9% after warm-up (705.5 -> 789.5 MiB)"]


def test_soak_judge_fails_errors_and_runs_too_short_to_judge() -> None:
    assert judge(_run([700.0] * 120, {"200": 5, "503": 1})) == ["requests failed: {'503': 1}"]
    assert judge(_run([700.0] * 6)) == ["the soak was too short to judge: run it for at least 2 minutes"]
