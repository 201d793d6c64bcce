"""Run every benchmark and write benchmarks/RESULTS.md with the machine and the date.

Each script runs in its own process with ``--json`` (so the 1M-passage run's
memory is given back before the next starts); its figures are kept under the
cache directory and rendered with the script's own tables. Hand-written text
after the ``<!-- notes -->`` line of an existing RESULTS.md is kept.

    python -m benchmarks.run_all                       # everything: about an hour on 2 cores the first time
    python -m benchmarks.run_all --only peers,embed    # rerun two, reuse the others' last figures
    python -m benchmarks.run_all --reuse                # only rewrite RESULTS.md from the saved figures
    python -m benchmarks.run_all --smoke --output /tmp/RESULTS.md
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import CACHE, ROOT, log, machine, parser

# Run order: quality first, then the long latency run, then the rest.
SCRIPTS = (
    "answers",
    "abstention",
    "embed",
    "peers",
    "latency",
    "quantized",
    "build",
    "http_load",
    "writes",
    "resume",
    "cluster",
    "filters",
    "verify",
)
TITLES = {
    "answers": "Answers: torch against the ONNX models on the gold sets",
    "abstention": "Abstention: near misses refused against right answers lost, by min_score",
    "embed": "Query embedding: model runtime and threads",
    "peers": "Against peers: txtai and Haystack on XQuAD",
    "latency": "Query latency by stage, 1k to 1M passages",
    "quantized": "8-bit vectors against full vectors",
    "build": "Index build throughput",
    "http_load": "HTTP load",
    "writes": "Writes into the segmented index",
    "resume": "qa index of a large corpus: memory, and a kill halfway",
    "cluster": "On a two-node Ray cluster: build, serving, a shard killed",
    "filters": "Metadata filters and collections",
    "verify": "Verifying stored citations",
}
NOTES = "<!-- notes -->"
# The options RESULTS.md's figures were taken with (latency: the int8 model, whose cached 1M vectors it reuses).
OPTIONS = {"latency": ["--model", "all-MiniLM-L6-v2-int8"], "build": ["--files", "100"]}


def figures(name: str, smoke: bool, rerun: bool) -> dict[str, Any] | None:
    """The script's figures: fresh when ``rerun``, else the last saved ones (None when there are none)."""
    saved = CACHE / "results" / f"{name}{'-smoke' if smoke else ''}.json"
    if rerun:
        log(f"running benchmarks.{name}")
        options = ["--smoke"] if smoke else OPTIONS.get(name, [])
        command = [sys.executable, "-m", f"benchmarks.{name}", "--json", *options]
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=True)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(done.stdout)
    if not saved.is_file() or not saved.stat().st_size:
        return None
    payload: dict[str, Any] = json.loads(saved.read_text(encoding="utf-8"))
    return payload


def render(results: dict[str, dict[str, Any]], notes: str) -> str:
    facts = machine()
    head = [
        "# Benchmark results",
        "",
        f"Written by `python -m benchmarks.run_all` on {facts['date']}: {facts['cores']} cores ({facts['cpu']}), "
        f"{facts['ram_gib']} GiB RAM, Python {facts['python']}. Each section names when its figures were taken "
        "and the 1-minute load average then: the machine is shared, so every comparison is made within one run.",
        "",
    ]
    body = []
    for name, payload in results.items():
        module = importlib.import_module(f"benchmarks.{name}")
        taken = payload.get("machine", {})
        command = " ".join([f"python -m benchmarks.{name}", *OPTIONS.get(name, [])])
        body += [
            f"## {TITLES[name]}",
            "",
            f"`{command}`: {taken.get('date', '?')}, load {taken.get('load_avg_1m', '?')}",
            "",
        ]
        body.append(module.render(payload))
    return "\n".join(head + body) + f"\n{NOTES}\n{notes}"


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument(
        "--only", default="", help="comma-separated scripts to rerun; the others' last figures are reused"
    )
    args.add_argument("--reuse", action="store_true", help="rerun nothing: render every script's last figures")
    args.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="where to write")
    opts = args.parse_args()
    chosen = set() if opts.reuse else set(opts.only.split(",")) - {""} or set(SCRIPTS)
    unknown = chosen - set(SCRIPTS)
    if unknown:
        args.error(f"unknown benchmarks: {', '.join(sorted(unknown))} (known: {', '.join(SCRIPTS)})")
    results = {name: payload for name in SCRIPTS if (payload := figures(name, opts.smoke, name in chosen))}
    old = opts.output.read_text(encoding="utf-8") if opts.output.is_file() else ""
    notes = old.split(NOTES, 1)[1].lstrip("\n") if NOTES in old else ""
    opts.output.write_text(render(results, notes), encoding="utf-8")
    log(f"wrote {opts.output}")
    if opts.json:
        print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
