"""``POST /v1/verify`` of 10,000 stored citations, beside a client that checks them itself.

A ``qa serve`` on the benchmarks' base index (the first US Code files, else the default corpus) answers
``--questions`` questions; their citations are repeated to ``--citations``, a third of them with their
offsets shifted by one (so the quote is found elsewhere: ``moved``) and a sixth naming a document that
does not exist (``gone``). Timed: the whole ``POST /v1/verify`` round trip, ``--repeats`` times. The
baseline, in the same run: a client that fetches each cited document once (``GET /v1/documents/{id}``)
and compares the quote with the text at its offsets itself.

    python -m benchmarks.verify
    python -m benchmarks.verify --citations 1000 --json
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from benchmarks.common import emit, log, machine, parser, summary, table
from benchmarks.latency import questions


def citations(url: str, asked: list[str], count: int) -> list[dict[str, Any]]:
    import httpx

    found = []
    for question in asked:
        found += httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=60).json()["citations"]
    out = []
    for i in range(count):
        citation = dict(found[i % len(found)])
        if i % 3 == 1:
            citation["start"] += 1
            citation["end"] += 1
        elif i % 6 == 2:
            citation["document_id"] = f"missing-{i}.md"
        out.append(citation)
    return out


def by_client(url: str, cited: list[dict[str, Any]]) -> Counter[str]:
    """What a client without /v1/verify does: fetch each document once, compare each quote at its offsets."""
    import httpx

    texts: dict[str, str | None] = {}
    outcome: Counter[str] = Counter()
    with httpx.Client(timeout=60) as client:
        for c in cited:
            if c["document_id"] not in texts:
                response = client.get(f"{url}/v1/documents/{c['document_id']}")
                texts[c["document_id"]] = response.json()["text"] if response.status_code == 200 else None
            text = texts[c["document_id"]]
            if text is None:
                outcome["gone"] += 1
            elif text[c["start"] : c["end"]] == c["quote"]:
                outcome["current"] += 1
            else:
                outcome["moved" if c["quote"] in text else "gone"] += 1
    return outcome


def run(opts: Any) -> dict[str, Any]:
    import httpx

    from benchmarks.corpora import base_index
    from benchmarks.http_load import server
    from qa.embedders import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2")
    base, name = base_index(embedder, smoke=opts.smoke)
    asked = questions(opts.questions)
    assert base.path is not None
    index_dir = base.path.parent.parent  # the current commit's file lies in <index_dir>/commits/
    with server(index_dir, None) as url:
        cited = citations(url, asked, opts.citations)
        log(f"{len(cited)} citations from {len(asked)} questions")
        times, client_times = [], []
        statuses: Counter[str] = Counter()
        for _ in range(opts.repeats):
            started = time.perf_counter()
            response = httpx.post(f"{url}/v1/verify", json={"citations": cited}, timeout=120)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            statuses = Counter(r["status"] for r in response.json()["results"])
            started = time.perf_counter()
            client = by_client(url, cited)
            client_times.append((time.perf_counter() - started) * 1000)
    return {
        "machine": machine(),
        "base": name,
        "citations": len(cited),
        "statuses": dict(statuses),
        "client_statuses": dict(client),
        "verify_ms": summary(times),
        "client_ms": summary(client_times),
    }


def render(payload: dict[str, Any]) -> str:
    v, c = payload["verify_ms"], payload["client_ms"]
    statuses = ", ".join(f"{k} {n}" for k, n in sorted(payload["statuses"].items()))
    return table(
        f"{payload['citations']:,} citations ({statuses}) over the {payload['base']} index",
        ["how", "p50 ms", "p95 ms", "runs"],
        [
            ["POST /v1/verify (one request)", v["p50"], v["p95"], v["n"]],
            ["client: GET each document once, compare itself", c["p50"], c["p95"], c["n"]],
        ],
    )


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--citations", type=int, default=10_000)
    cli.add_argument("--questions", type=int, default=100)
    cli.add_argument("--repeats", type=int, default=5)
    opts = cli.parse_args()
    if opts.smoke:
        opts.citations, opts.questions, opts.repeats = 30, 3, 2
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
