"""Query embedding: torch against the ONNX models (the default model's export, int8, qint8), 1 thread against 2,
idle and beside a busy process.

The query embedding is most of a query's time. Every configuration embeds the
same questions one at a time, interleaved per question (so a noisy neighbour
hurts all of them alike), with the query cache cleared. "busy" repeats the run
while a second process spins on one core, as a server's other work or another
job on a 2-core machine would. "onnx export" is how a server embeds the default
model's questions (``qa.embedders.load_embedder``: its torch weights exported to
onnxruntime as they are); "torch" is the same model on torch, its baseline. The
agreement table gives the cosine between the torch and each ONNX model's vectors
of the same texts.

    python -m benchmarks.embed
    python -m benchmarks.embed --questions 100 --json
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import add_block, emit, interleaving, log, machine, parser, summary, table, timed, turns

SPIN = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"


def configurations(smoke: bool) -> dict[str, Callable[[str], Any]]:
    """Name -> a function embedding one question with the cache bypassed."""
    import torch

    from qa.defaults import DEFAULT_MODEL, ONNX_INT8_MODEL, ONNX_QINT8_MODEL
    from qa.embed import HashEmbedder, SentenceTransformerEmbedder
    from qa.onnx_embed import OnnxEmbedder

    if smoke:
        fake = HashEmbedder(dim=384)
        return {"hash": lambda q: fake.embed_queries([q])}
    model = SentenceTransformerEmbedder()
    configs: dict[str, Callable[[str], Any]] = {}
    for threads in (1, 2):

        def with_torch(q: str, n: int = threads) -> Any:
            torch.set_num_threads(n)
            model.clear_cache()
            return model.embed_queries([q])

        configs[f"torch, {threads} thread{'s' * (threads > 1)}"] = with_torch
    runtimes = ((DEFAULT_MODEL, "onnx export"), (ONNX_INT8_MODEL, "onnx int8"), (ONNX_QINT8_MODEL, "onnx qint8"))
    for onnx_name, label in runtimes:
        for threads in (1, 2):
            onnx = OnnxEmbedder(onnx_name, threads=threads)

            def with_onnx(q: str, e: OnnxEmbedder = onnx) -> Any:
                e.clear_cache()
                return e.embed_queries([q])

            configs[f"{label}, {threads} thread{'s' * (threads > 1)}"] = with_onnx
    return configs


def interleaved(
    configs: dict[str, Callable[[str], Any]], asked: list[str], block: int = 1
) -> dict[str, dict[str, float]]:
    """Latency of each configuration, taking turns ``block`` questions at a time (``benchmarks.common.turns``)."""
    for question in asked[:10]:
        for embed in configs.values():
            embed(question)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for name, turn in turns(len(asked), list(configs), block):
        times[name].extend(timed(configs[name], asked[i])[1] for i in turn)
    return {name: summary(ms) for name, ms in times.items()}


def agreement(asked: list[str], passages: list[str]) -> dict[str, dict[str, float]]:
    """Cosine between torch and each ONNX model's vectors of the same questions and passages."""
    from qa.defaults import DEFAULT_MODEL, ONNX_MODELS
    from qa.embed import SentenceTransformerEmbedder
    from qa.onnx_embed import OnnxEmbedder

    torch_model = SentenceTransformerEmbedder()
    out = {}
    for model in (DEFAULT_MODEL, *ONNX_MODELS):
        onnx_model = OnnxEmbedder(model)
        for name, texts in (("questions", asked), ("passages", passages)):
            cosine = np.sum(torch_model.embed_passages(texts) * onnx_model.embed_passages(texts), axis=1)
            label = f"{model} (onnx export)" if model == DEFAULT_MODEL else model
            out[f"{label}: {name}"] = {
                "n": len(texts), "min": round(float(cosine.min()), 5), "mean": round(float(cosine.mean()), 5)
            }  # fmt: skip
    return out


def run(opts: Any) -> dict[str, Any]:
    from benchmarks.common import CORPUS, offline
    from benchmarks.latency import questions
    from qa.chunk import chunk_document, retrieval_text
    from qa.ingest import load_corpus

    offline()
    asked = questions(10 if opts.smoke else opts.questions)
    configs = configurations(opts.smoke)
    log("embedding, machine as it is")
    idle = interleaved(configs, asked, opts.block)
    log("embedding, beside a process spinning on one core")
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        busy = interleaved(configs, asked, opts.block)
    finally:
        spinner.kill()
        spinner.wait()
    payload: dict[str, Any] = {
        "machine": machine(), "questions": len(asked), "block": opts.block, "idle": idle, "busy": busy
    }  # fmt: skip
    if not opts.smoke:
        passages = [retrieval_text(p) for d in load_corpus(CORPUS)[0] for p in chunk_document(d)]
        payload["agreement"] = agreement(asked, passages)
    return payload


def render(payload: dict[str, Any]) -> str:
    rows = [
        [
            name,
            payload["idle"][name]["p50"],
            payload["idle"][name]["p99"],
            payload["busy"][name]["p50"],
            payload["busy"][name]["p99"],
        ]
        for name in payload["idle"]
    ]
    title = (
        f"Query embedding, ms per question ({payload['questions']} questions, {interleaving(payload.get('block', 1))})"
    )
    out = table(title, ["configuration", "p50", "p99", "p50 busy", "p99 busy"], rows)
    if "agreement" in payload:
        rows = [[name, a["n"], f"{a['min']:.5f}", f"{a['mean']:.5f}"] for name, a in payload["agreement"].items()]
        out += "\n" + table("Cosine of torch and ONNX vectors", ["model: texts", "n", "min", "mean"], rows)
    return out


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--questions", type=int, default=200, help="questions per configuration")
    add_block(args)
    opts = args.parse_args()
    emit(run(opts), opts.json, render)


if __name__ == "__main__":
    main()
