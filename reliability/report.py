"""Write docs/reliability.md from the figures under artifacts/reliability/.

    python -m reliability.report          # from the figures already there
    python -m reliability.report --run    # first run tests/reliability (every tier) and the quick load
    python -m reliability.report --run --full   # ... and the full load (3 x 60 s) and the 10-minute soak

The tests write ``tests.json`` when ``RELIABILITY_ARTIFACTS`` is set (``--run`` sets it); the load and
soak scripts write ``load.json`` / ``load-quick.json`` and ``soak.json`` / ``soak-no-writes.json``.
Sections whose figures are missing say so and name the command that produces them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from reliability.common import ARTIFACTS, ROOT, log, machine

DOC = ROOT / "docs" / "reliability.md"


def _read(name: str) -> dict[str, Any]:
    path = ARTIFACTS / f"{name}.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return [_row(*header), _row(*["---"] * len(header)), *(_row(*r) for r in rows)]


def _missing(what: str, command: str) -> list[str]:
    return [f"*No figures for {what} yet: run `{command}`.*", ""]


def _machine_line(facts: dict[str, Any]) -> str:
    if not facts:
        return "unknown"
    load = " / ".join(str(x) for x in facts.get("load_average", []))
    return (
        f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB, Python {facts['python']}, "
        f"{facts['platform']}; load average (1/5/15 min) {load} at {facts['date']}"
    )


def faults(t: dict[str, Any]) -> list[str]:
    kills, crash, damaged = t.get("kills", {}), t.get("ingestion_crash", {}), t.get("damaged_index", {})
    rows: list[list[object]] = []
    if "timed_kills" in kills:
        outcomes = kills.get("outcomes", [])
        timed = [o for o in outcomes if o.startswith("after")]
        swapped = sum(o.endswith(": new") for o in timed)
        rows.append(
            [
                f"SIGKILL of a rebuild of the {kills['corpus']} corpus ({kills['documents']} "
                f"documents, {kills['passages']} passages, {kills['full_run_s']} s a run), at 10% ... 85% of a run",
                kills["timed_kills"],
                f"the previous index loaded with the same answers after {len(timed) - swapped} kills"
                + (f"; {swapped} came after the swap and found the new commit whole" if swapped else ""),
            ]
        )
        rows.append(
            [
                "SIGKILL at named points of the same rebuild: " + ", ".join(f"`{p}`" for p in kills["points"]),
                kills["point_kills"],
                "old commit, same answers, at every point before `swapped`; new commit, whole, from `swapped` on; "
                f"reruns completed and removed the leftovers of the kills ({kills['debris_cleared_by_reruns']}: "
                "segments no commit names and temporary links)",
            ]
        )
    if "segment_points" in kills:
        rows.append(
            [
                "SIGKILL at each step of a segment write, a tombstone and a merge (`qa.writes`): "
                + ", ".join(f"`{o}`" for o in kills["segment_outcomes"]),
                kills["segment_points"],
                "the last commit loaded at every point (the state is the one named); after the restart's recovery "
                "every stored write and deletion was applied, a merge completed with the answers of a one-shot "
                "build, and no segment was left that no commit names",
            ]
        )
    if "cli_kills" in kills:
        rows.append(
            [
                "SIGKILL of `qa index` (real model) while it embeds",
                kills["cli_kills"],
                "old index, same answers; rerun completed",
            ]
        )
    if "kills_after_ack" in crash:
        rows.append(
            [
                "SIGKILL of `qa serve` right after a 201 (JSON and multipart upload) or a 204 (delete), then a restart",
                crash["kills_after_ack"],
                f"{crash['acknowledged_writes_lost']} acknowledged writes lost",
            ]
        )
    if "kills_during_upload" in crash:
        rows.append(
            ["SIGKILL of `qa serve` while an upload is in flight", crash["kills_during_upload"], crash["during_upload"]]
        )
    if "kinds" in damaged:
        rows.append(
            [
                "Damaged index: a segment's file truncated, one bit flipped, missing, from another segment or linked "
                "to one; a segment's manifest of another segment (plain, or vouched for by an edited commit), empty, "
                "naming `../../etc/passwd`, with `files` null or a list; a directory for a file; a commit of another "
                "model, empty, naming a segment outside the index or one that is missing",
                f"{damaged['kinds']} kinds x {damaged['checks_per_kind']} checks",
                "refused before numpy or FAISS opened a file; `qa show` exits 1 with the reason; the server starts, "
                "/readyz answers 503 with the reason; a damaged new commit is never served, the previous one keeps "
                "answering",
            ]
        )
    if not rows:
        return _missing("faults", "python -m reliability.report --run")
    return _table(["Fault injected", "Count", "Result"], rows) + [""]


def inputs(t: dict[str, Any]) -> list[str]:
    fuzz, hostile, st, dl, access = (
        t.get(k, {}) for k in ("fuzz", "hostile_files", "schemathesis", "deadlines", "access")
    )
    rows: list[list[object]] = []
    if fuzz:
        rows.append(
            [
                "Hypothesis on `Engine.ask` and `Engine.search`: any code point (lone surrogates, NUL, RTL overrides, "
                f"combining marks, emoji), up to {fuzz['max_question_chars']:,} characters",
                f"{fuzz['engine_examples_hash']} (HashEmbedder) + {fuzz['engine_examples_model']} (real model) + "
                f"{fuzz['named_cases']} named cases",
                "only `QueryError` or a valid answer (every quote verbatim at its offsets), each within its time bound",
            ]
        )
        rows.append(
            [
                "The same strings as JSON to `POST /v1/ask`, and any bytes percent-encoded in `?q=`",
                fuzz.get("api_examples", "?"),
                "200, 400 or 422 only",
            ]
        )
    if st:
        rows.append(
            [
                f"Schemathesis, all {st['operations']} operations, every check but `positive_data_acceptance`, "
                "four phases (stateful included)",
                f"{st.get('cases_with_key', '?')} with a key + {st.get('cases_without_key', '?')} without",
                "no failure: no 5xx, every response matches the schema, auth enforced",
            ]
        )
    if hostile:
        rows.append(
            [
                "Hostile uploads (multipart): empty, binary, UTF-16, Latin-1, 0-page PDF, scanned PDF, PDF bomb, "
                "cyclic PDF, truncated PDF, zip renamed .pdf, script-only HTML, `../` and NUL and ESC and an RTL "
                "override in file names, a 5 MB line without spaces (3,334 passages)",
                hostile.get("api_refused", "?"),
                "a 4xx problem naming the file and the rule (413 naming QA_MAX_DOCUMENT_PASSAGES for the long "
                "line); documents, answers and search unchanged",
            ]
        )
        rows.append(
            [
                "Indexed safely: HTML full of scripts and event handlers, a PDF whose text map yields lone "
                "surrogates and NUL, zalgo text",
                hostile.get("api_indexed_safely", "?"),
                "no script body or handler in the stored text; U+FFFD for unwritable characters; the rest unchanged",
            ]
        )
        rows.append(
            [
                "The same files in a corpus directory for `qa index` (the 5 MB line is indexed there: the operator's "
                "tool has no per-document bound), plus a non-UTF-8 name, a newline in a name, a link to "
                "/etc/passwd, a 60 MB sparse file, a FIFO, a folder named .md",
                hostile.get("corpus_refused", "?"),
                "each named on stderr and skipped; the index equals the clean corpus's, answers included",
            ]
        )
        rows.append(
            [
                "Damaged PDFs (random bit flips, cuts, inserted tokens), and HTML fuzzed from scripts, handlers, "
                "comments and unterminated tags",
                f"{hostile.get('pdf_mutations', '?')} + {hostile.get('html_examples', '?')}",
                "`CorpusError` or text, never another exception; no script or handler text",
            ]
        )
    if dl:
        rows.append(
            [
                "Slow requests (QA_DEBUG_DELAY_MS 10 s over QA_REQUEST_TIMEOUT 1 s)",
                dl.get("slow_requests", "?"),
                f"503 with Retry-After within {dl.get('slow_request_503_within_s', '?')} s",
            ]
        )
        rows.append(
            [
                "Slow bodies, a byte every 0.1 s (JSON, chunked, multipart upload)",
                dl.get("slow_bodies_cut", "?"),
                f"503 within {dl.get('slow_body_cut_within_s', '?')} s and the connection closed",
            ]
        )
        rows.append(
            [
                "Connections that never finish their headers",
                dl.get("stalled_header_connections", "?"),
                f"other clients served (10 requests in {dl.get('others_served_in_s', '?')} s); uvicorn itself never "
                "times them out: see the limits below",
            ]
        )
    if access:
        rows.append(
            [
                "Keys in every form (right, wrong, prefix, suffix, upper case, Basic, bare) on reads, writes, "
                "errors and a 500, all loggers at DEBUG",
                access.get("requests_checked_for_leaks", "?"),
                "no key in any log line or response body; comparisons by `hmac.compare_digest` over every key",
            ]
        )
    if not rows:
        return _missing("inputs", "python -m reliability.report --run")
    return _table(["Input", "Tried", "Result"], rows) + [""]


def attacks(t: dict[str, Any]) -> list[str]:
    """The attacks on a running server (tests/reliability/test_rel_attacks.py), one row each."""
    a = t.get("attacks", {})
    if not a:
        return _missing("the attacks", "python -m reliability.report --run")
    rows: list[list[object]] = [
        [
            "Every route and method of the app (from its route list) without a key, QA_REQUIRE_KEY_FOR_READS=true",
            a.get("routes_checked", "?"),
            f"routes showing a document's id, title or text: {a.get('routes_leaking_content_without_key', '?')}; "
            "the rest answer 401 (the demo page and viewer included) or are the probes, metrics and static files",
        ],
        [
            "`qa index` of the corpus directory under a live server, with documents uploaded and deleted through "
            "the API",
            a.get("rebuilds_under_live_server", "?"),
            f"acknowledged documents lost or resurrected: {a.get('acknowledged_documents_lost_by_rebuild', '?')}",
        ],
        [
            "Two `qa serve` processes on one index, three concurrent writers, each write and delete read back at "
            "once from both",
            f"{a.get('worker_writes', '?')} writes, {a.get('worker_deletes', '?')} deletes, "
            f"{a.get('worker_reads', '?')} reads",
            f"stale reads: {a.get('stale_reads', '?')}",
        ],
        [
            f"A 44 KB JSON body of `w1<br>w2<br>...` ({a.get('flood_passages', '?'):,} passages)",
            1,
            f"413 naming QA_MAX_DOCUMENT_PASSAGES in {a.get('flood_refused_in_s', '?')} s, before any embedding",
        ],
        [
            f"A {a.get('slow_pdf_bytes', 0):,}-byte PDF that keeps the parser busy for seconds "
            "(QA_PARSE_TIMEOUT 0.5 s)",
            1,
            f"422 in {a.get('slow_pdf_refused_in_s', '?')} s; the parsing process killed, nothing left running",
        ],
        [
            "`X-Forwarded-For` from 127.0.0.1 naming a new address each time, QA_RATE_LIMIT=2/minute",
            a.get("spoofed_forwarded_for_requests", "?"),
            f"requests past the limit: {a.get('spoofed_requests_past_limit', '?')} (trusted only from "
            "QA_FORWARDED_ALLOW_IPS)",
        ],
        [
            "A 6,000-character id on every route that looks one up (API, viewer, static files, docs assets)",
            a.get("not_found_routes_checked", "?"),
            f"404s repeating the id: {a.get('not_found_echoing_the_id', '?')}",
        ],
        [
            "Ids in NFC and NFD, with zero-width, bidirectional, BOM, soft-hyphen and line-separator characters",
            6,
            f"confusable ids accepted as distinct: {a.get('confusable_ids_accepted_as_distinct', '?')} "
            "(NFC is the id; invisible characters are a 422)",
        ],
        [
            "A key in the query string (named `api_key`, `token`, `key`, `access_token`, or a key's value)",
            a.get("keys_in_query_strings", "?"),
            f"400, and keys in the access log: {a.get('keys_in_query_logged', '?')} (the query is redacted first)",
        ],
    ]
    return _table(["Attack", "Tried", "Result"], rows) + [
        "",
        "Also checked there: /readyz's 503 names no path or file (those go to the server log), and the demo "
        "page's embed snippet uses QA_PUBLIC_URL or relative paths, never the request's `Host` header.",
        "",
    ]


def known_bugs(t: dict[str, Any]) -> list[str]:
    """Exactly the tests of the last run marked xfail (strict): a bug listed here has a test that shows it."""
    bugs: dict[str, str] = t.get("known_bugs", {})
    if not t:
        return _missing("known bugs", "python -m reliability.report --run")
    if not bugs:
        return ["None: no test in `tests/reliability` is marked xfail.", ""]
    return [f"- `{test}`: {reason}" for test, reason in sorted(bugs.items())] + [""]


def load(figures: dict[str, Any]) -> list[str]:
    if not figures:
        return _missing("load", "python -m reliability.load")
    rows = [
        [
            p["concurrency"], p["seconds"], p["requests"], p["throughput_rps"], p["p50_ms"], p["p90_ms"], p["p99_ms"],
            p["max_ms"], f"{p.get('one_off_p50_ms', '?')} / {p.get('one_off_p99_ms', '?')}", p["errors"],
            " - ".join(str(x) for x in p["rss_mib"]),
        ]
        for p in figures["phases"]
    ]  # fmt: skip
    limited = figures["rate_limited"]
    facts = figures["machine"]
    shared = facts.get("load_average", [0])[0] > (facts.get("cores") or 1)
    lines = [
        f"{'Quick run (CI)' if figures['quick'] else 'Full run'} on {_machine_line(figures['machine'])}. "
        "`POST /v1/ask` (3 in 4) and `GET /v1/ask?q=` (1 in 4), questions drawn from the gold set (answerable "
        "and not), off-topic and non-English ones; half are one-off variants that miss the query cache. "
        "QA_RATE_LIMIT=1000000/minute (on the path, never reached), QA_CORS_ORIGINS set, Origin headers mixed. "
        "One server process (`qa serve`, 1 worker, QA_THREADS=2); the client runs on the same machine. The model "
        "answers one question at a time, so above a few clients one-off questions queue (their columns) while "
        "repeated ones are answered from the query cache without waiting: that is why p50 can fall as p99 rises."
        + (
            " The machine was shared with other work during the run (load average above its core count): "
            "read the latencies as upper bounds."
            if shared
            else ""
        ),
        "",
        *_table(
            [
                "Concurrency",
                "Seconds",
                "Requests",
                "Answers/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "Max ms",
                "One-off p50 / p99 ms",
                "Errors",
                "Server RSS MiB",
            ],
            rows,
        ),  # fmt: skip
        "",
        f"Over the limit (QA_RATE_LIMIT={limited['rate_limit']}, concurrency {limited['concurrency']}, "
        f"{limited['seconds']} s): {limited['requests']} requests, statuses {limited['statuses']}, "
        f"Retry-After values {limited['retry_after']}, {limited['server_5xx']} server errors, "
        f"failed CORS or header checks: {limited['failed_checks'] or 'none'}.",
        "",
    ]
    if figures["failures"]:
        lines += ["**Failed checks:** " + "; ".join(figures["failures"]), ""]
    return lines


def soak(runs: list[dict[str, Any]]) -> list[str]:
    runs = [r for r in runs if r]
    if not runs:
        return _missing("the soak", "python -m reliability.soak")
    rows = []
    for r in runs:
        writes = sum(v for k, v in r["statuses"].items() if k.startswith("write add"))
        rows.append(
            [
                f"{r['seconds'] / 60:.1f} min, concurrency {r['concurrency']}",
                f"every {every:g} s ({writes})" if (every := r.get("write_every_s", 30.0)) else "none",
                r["requests"],
                f"{r['p50_ms']} / {r['p99_ms']}",
                f"{r.get('baseline_rss_mib')} -> {r.get('final_rss_mib')}",
                f"{r.get('rss_growth_pct')}%",
                r.get("peak_rss_mib"),
                " -> ".join(str(x) for x in r.get("threads", [])),
                " -> ".join(str(x) for x in r.get("fds", [])),
                "pass" if not r["failures"] else "; ".join(r["failures"]),
            ]
        )
    header = ["Run", "Add+delete cycles", "Requests", "p50 / p99 ms", "RSS after warm-up -> end, MiB", "Growth",
              "Peak MiB", "Threads", "Open files", "Verdict"]  # fmt: skip
    return [
        f"On {_machine_line(runs[0]['machine'])}. Warm-up: the first fifth of the run (at least a minute); growth "
        "compares the median RSS of the last tenth of the run with the median of the minute after the warm-up "
        "(limit 5%).",
        "",
        *_table(header, rows),
        "",
    ]


LIMITS = """\
## Known limits

- **Incomplete headers are not timed out.** uvicorn has no deadline for a request's headers (a client that
  never finishes them keeps its connection); they cost a socket each and starve no one (measured above),
  but a public deployment should sit behind a reverse proxy with a header timeout (nginx
  `client_header_timeout`, HAProxy `timeout http-request`) and a connection limit.
- **A 503 from the deadline does not undo a write that is being indexed.** The deadline answers the client
  and frees the request. A deadline that passes while the upload is parsed (in a child process, itself killed
  at QA_PARSE_TIMEOUT) writes nothing; once indexing (embedding) has started it runs in a thread that cannot
  be interrupted, finishes and is served. Writes are idempotent by document id, so a client retrying after
  the 503 gets the same document.
- **A write's cost is bounded, not free.** One document may make at most QA_MAX_DOCUMENT_PASSAGES passages
  (500) and one write may embed at most QA_MAX_WRITE_TEXTS texts (1,500): about 20 s with the default
  model on 2 cores (measured: 10,027 texts, 2,000 passages and their sentences, took 137 s, 73 texts a
  second), under the 30 s deadline. Larger documents belong in `qa index` (the operator's tool), or raise
  both limits with QA_REQUEST_TIMEOUT. Only key holders can upload.
- **A damaged current build is not rolled back.** The server keeps the build it serves when a damaged one is
  swapped in, but a server started on a damaged build answers 503 until `qa index` rebuilds; it does not fall
  back to an older build on disk.
"""


def run_checks(full: bool) -> None:
    env = {**os.environ, "RELIABILITY_ARTIFACTS": str(ARTIFACTS)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "tests.json").unlink(missing_ok=True)
    log("running tests/reliability (every tier)")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    log(summary)
    tests = json.loads((ARTIFACTS / "tests.json").read_text()) if (ARTIFACTS / "tests.json").exists() else {}
    failed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    tests["pytest"] = {"summary": re.sub(r"=+", "", summary).strip(), "exit_code": result.returncode, "failed": failed}
    (ARTIFACTS / "tests.json").write_text(json.dumps(tests, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    commands = [["reliability.load", "--quick"]] + ([["reliability.load"], ["reliability.soak"]] if full else [])
    for command in commands:
        log(f"running python -m {' '.join(command)}")
        subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env, timeout=1800)


def render() -> str:
    tests = _read("tests")
    full_load = _read("load")
    pytest_line = tests.get("pytest", {}).get("summary", "not recorded (run with --run)")
    if failed := tests.get("pytest", {}).get("failed"):
        pytest_line += "; failed: " + ", ".join(f"`{name}`" for name in failed)
    lines = [
        "# Reliability report",
        "",
        "Faults injected, inputs tried and load held, with the figures of the last run. Written by "
        "`python -m reliability.report` from the JSON under `artifacts/reliability/`; rerun everything with "
        "`python -m reliability.report --run --full` (about 25 minutes), or the bounded checks alone with "
        "`--run`. The tests are in `tests/reliability/`; the load and soak scripts in `reliability/`.",
        "",
        f"- Machine: {_machine_line(machine())} (when this page was written).",
        f"- `pytest tests/reliability`: {pytest_line}.",
        "- Every server binds 127.0.0.1; every loop is bounded in count and in time.",
        "",
        "## Faults injected",
        "",
        *faults(tests),
        "## Inputs tried",
        "",
        *inputs(tests),
        "## Attacks on a running server",
        "",
        *attacks(tests),
        "## Known bugs",
        "",
        *known_bugs(tests),
        "## Load held",
        "",
        *load(full_load or _read("load-quick")),
        "## Memory over a soak",
        "",
        *soak([_read("soak"), _read("soak-no-writes")]),
        LIMITS,
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run tests/reliability and the quick load first")
    parser.add_argument("--full", action="store_true", help="with --run: also the full load and the 10-minute soak")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.run:
        run_checks(args.full)
    args.output.write_text(render(), encoding="utf-8")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
