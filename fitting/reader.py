"""``python -m fitting.reader``: train the cross-encoder (``qa.reader``), export it, score the tables.

    python -m fitting.reader            # train the fold models and the shipped one, score the tables
    python -m fitting.reader --quick    # 40 steps per model: checks the pipeline end to end (minutes)
    python -m fitting.reader --questions 800   # fold models on another sample size, beside the committed ones
    python -m fitting.reader --listwise 1      # fold models with a listwise loss, beside the committed ones
    python -m fitting.reader --seed 1          # fold models from another seed, beside the committed ones
    python -m fitting.reader --no-headings     # fold models reading candidates without their headings
    python -m fitting.reader --tokens 192      # fold models trained and read on longer inputs

The cross-encoder is all-MiniLM-L6-v2 (the shipped embedder's weights) with a
one-logit head, fine-tuned for one epoch on (question, candidate) pairs read
from the candidate tables (``fitting.tables``): the candidates the engine
itself draws, the ones holding a gold answer as positives, the best-ranked
others as hard negatives (same passage or section), and near misses (a
question asked without its answer's passages) as negatives only. A candidate
is read after the headings above it (``with_headings``, ``qa.reader.read_as``),
as the engine reads it.

**Held out honestly.** The six sets fall into ``FOLDS``, three groups of two;
for each group a model is trained on the other four sets, and that model
scores the group's tables (the ``reader`` column). Every set's column thus
comes from a model that never saw it, so the scorer's leave-one-dataset-out
figures (``python -m fitting``) stay held out, and the scorer learns how much
to trust an out-of-sample reader. The shipped model is trained the same way on
all six sets.

Deterministic: seeded, a fixed sample of each set, and the same CPU kernels and threads on any machine
(``KERNELS``, ``TRAIN_THREADS``), so the same pairs give the same model. Each model
is exported to ONNX with int8 weights (``int8_weights``: about 23 MB) under
``qa/models/reader/`` with the tokenizer and a card (data sha256s, settings,
held-out figures); fold models go to the cache only.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fitting.__main__ import TEXTS
from fitting.fit import fit, question_slices
from fitting.indexes import CACHE, log
from fitting.sets import SET_NAMES
from fitting.tables import TABLES, Table, Texts, load_table, load_texts, save_table
from qa.defaults import DEFAULT_MODEL, DEFAULT_READER_CANDIDATES, DEFAULT_READER_TOKENS
from qa.features import HEADINGS_READ
from qa.reader import READER_DIR, Reader, read_as

# The sets whose pairs train the model. PolicyQA's are left out: its labels are gold spans of a few words
# while its generic questions ("Do you share my data?") are answered by many sentences of a policy, so most
# of its "negatives" answer too; with them in, training stayed at the base rate. It is still scored and
# measured, held out like the others.
TRAINED_ON = ("gold", "title6", "title8", "xquad", "selqa")
# Each group is left out together: its sets are scored by a model trained on the other four.
FOLDS = (("gold", "policyqa"), ("title6", "selqa"), ("title8", "xquad"))
SEED = 20261130
# A set gives at most this many questions (and as many near misses) to training, drawn with SEED; all of them
# (800, ``--questions``) gave a worse reader on every held-out set (docs/fitting.md).
QUESTIONS_PER_SET = 500
# Per question: its positives (at most POSITIVES) and its NEGATIVES best-ranked candidates without an answer.
POSITIVES = 2
NEGATIVES = 3
BATCH = 16
# Names the model's shape and loss (``mean_pooled``, positives weighed to half): a fold model in the cache is
# reused only when its recipe, pairs and settings are today's. Change it when the training code changes.
RECIPE = "joint-mean-pooled-product-head/balanced-bce/1"
LEARNING_RATE = 5e-5
WARMUP = 0.1
# Which CPU kernels sum a training step's float products (PyTorch's own, AVX-512 or AVX2; MKL's matrix
# products) and over how many threads changes the last bits, and an epoch of steps turns those bits into
# another model: 20 steps on this machine's AVX-512 kernels and on its AVX2 ones differ by up to 4e-6 in a
# weight, and fold models retrained on this machine scored the held-out sets differently from those committed
# early on 2026-12-02 (PolicyQA top-1 0.481 against 0.442) from the same pairs. So ``python -m fitting.reader``
# trains on the AVX2 kernels, which every x86-64 machine of the last decade has, on TRAIN_THREADS threads
# whatever its cores: the same pairs give the same model on any of them, with the library versions the
# card records. Both variables are read when torch loads, so ``main`` sets them before anything imports it.
KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
TRAIN_THREADS = 2


Pair = tuple[str, str, float]


def pairs_of(table: Table, texts: Texts, rng: random.Random, questions: int = QUESTIONS_PER_SET) -> list[Pair]:
    """Training pairs of one set: its candidates ranked by a scorer fitted on it alone (so the negatives
    are the ones the engine would rank high), from at most ``questions`` questions and as many near misses."""
    logits = fit([table], model=DEFAULT_MODEL).logits(table.features)
    groups = question_slices(table)
    genuine = [q for q in range(table.n_questions) if not table.near_miss[q]]
    near = [q for q in range(table.n_questions) if table.near_miss[q]]
    chosen = rng.sample(genuine, min(len(genuine), questions))
    chosen += rng.sample(near, min(len(near), questions))
    out: list[Pair] = []
    for q in sorted(chosen):
        rows = range(groups[q].start, groups[q].stop)
        order = sorted(rows, key=lambda r: (-logits[r], r))
        positives = [r for r in order if table.label[r]][:POSITIVES]
        negatives = [r for r in order if not table.contained[r] and not table.label[r]][:NEGATIVES]
        question = texts.questions[q]
        out += [(question, texts.candidates[r], 1.0) for r in positives]
        out += [(question, texts.candidates[r], 0.0) for r in negatives]
    return out


def training_pairs(
    tables: dict[str, Table], texts: dict[str, Texts], questions: int = QUESTIONS_PER_SET, seed: int = SEED
) -> dict[str, list[Pair]]:
    """Every set's training pairs (``pairs_of``, one generator seeded ``seed`` across the sets in SET_NAMES'
    order); none for the sets not TRAINED_ON."""
    rng = random.Random(seed)
    return {n: pairs_of(tables[n], texts[n], rng, questions) if n in TRAINED_ON else [] for n in SET_NAMES}


def fold_models(
    tables: dict[str, Table], texts: dict[str, Texts], pairs: dict[str, list[Pair]], root: Path,
    *, steps: int | None = None, listwise: float = 0.0, seed: int = SEED, max_tokens: int = DEFAULT_READER_TOKENS,
) -> Iterator[tuple[list[str], float, list[Table]]]:  # fmt: skip
    """For each group of FOLDS, a model trained on the other sets' ``pairs`` (``trained``, in ``root``/<group>)
    and the group's tables scored by it (``score_tables``), both cutting inputs to ``max_tokens``: the sets
    trained on, the seconds, the tables."""
    chosen = rows_to_read(tables)
    for group in FOLDS:
        rest = [name for name in SET_NAMES if name not in group]
        training = [p for name in rest for p in pairs[name]]
        sources = [name for name in rest if pairs[name]]
        log(f"fold without {', '.join(group)}: {len(training)} pairs from {', '.join(sources)}")
        folder = root / "-".join(group)
        took = trained(folder, training, steps, listwise, seed, max_tokens)
        yield rest, took, score_tables(folder, [tables[name] for name in group], texts, chosen, max_tokens)


def batches_of(pairs: Sequence[Pair], seed: int = SEED) -> list[list[int]]:
    """One epoch's batches of pair indexes, in a seeded order; each batch holds pairs of about one length
    (sorted within windows of 64 batches), so little of a batch is padding."""
    rng = random.Random(seed)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    window = 64 * BATCH
    batches = []
    for lo in range(0, len(order), window):
        chunk = sorted(order[lo : lo + window], key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        batches += [chunk[i : i + BATCH] for i in range(0, len(chunk), BATCH)]
    rng.shuffle(batches)
    return batches


def question_batches(pairs: Sequence[Pair], seed: int = SEED) -> list[list[int]]:
    """One epoch's batches for the listwise recipe (``train``'s ``listwise``): each question's pairs in one
    batch, whole questions packed into batches of at most BATCH pairs, in a seeded order; questions of
    about one length share a batch (sorted by their longest pair within windows of 64 batches' worth)."""
    rng = random.Random(seed)
    by_question: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_question.setdefault(pair[0], []).append(i)
    questions = list(by_question.values())
    rng.shuffle(questions)

    def packed(window: list[list[int]]) -> list[list[int]]:
        window.sort(key=lambda rows: max(len(pairs[i][0]) + len(pairs[i][1]) for i in rows))
        out: list[list[int]] = []
        batch: list[int] = []
        for rows in window:
            if batch and len(batch) + len(rows) > BATCH:
                out.append(batch)
                batch = []
            batch = batch + rows
        return [*out, batch] if batch else out

    batches: list[list[int]] = []
    window: list[list[int]] = []
    size = 0
    for rows in questions:
        window.append(rows)
        size += len(rows)
        if size >= 64 * BATCH:
            batches += packed(window)
            window, size = [], 0
    if window:
        batches += packed(window)
    rng.shuffle(batches)
    return batches


def mean_pooled(folder: Path) -> Any:
    """A cross-encoder over the BERT encoder in ``folder``, read jointly: the question's and the candidate's
    token states are each averaged (the pooling the encoder was trained with as an embedder) and
    normalised, and a linear head reads their product. It starts as ten times their cosine less five, a
    useful score before any step; a head on the [CLS] state, which that training never used, stayed at
    the base rate for a whole epoch on two of three folds."""
    import torch
    from transformers import AutoModel

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(folder))
            size = int(self.encoder.config.hidden_size)
            # Starts as the embedder's cosine of the two sides (scaled): a useful score before any step.
            self.head = torch.nn.Linear(size, 1)
            torch.nn.init.constant_(self.head.weight, 10.0)
            torch.nn.init.constant_(self.head.bias, -5.0)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            states = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            side = token_type_ids.unsqueeze(-1).to(states.dtype)
            question = self._mean(states, mask * (1.0 - side))
            candidate = self._mean(states, mask * side)
            return self.head(question * candidate)

        @staticmethod
        def _mean(states: Any, weights: Any) -> Any:
            pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return MeanPooled()


def train(
    pairs: Sequence[Pair],
    *,
    steps: int | None = None,
    max_tokens: int = DEFAULT_READER_TOKENS,
    listwise: float = 0.0,
    seed: int = SEED,
) -> Any:
    """A cross-encoder fine-tuned from all-MiniLM-L6-v2 on ``pairs`` (one epoch, or ``steps`` batches).

    With ``listwise`` above 0 (a recipe tried, not the shipped one: docs/fitting.md) a batch holds whole
    questions (``question_batches``), and each question with a positive and a negative in it adds, weighed
    by ``listwise``, the softmax loss of its positives against its other pairs to the pairs' own loss.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    from qa.embed import resolve_model_path

    torch.manual_seed(seed)
    torch.set_num_threads(TRAIN_THREADS)
    if (kernels := torch.backends.cpu.get_cpu_capability()) != KERNELS["ATEN_CPU_CAPABILITY"].upper():
        log(f"  training on {kernels} kernels: torch was loaded before fitting.reader could choose AVX2, so this")
        log("  model will not be bit for bit the one python -m fitting.reader trains")
    tokenizer = Reader.tokenizer_of(resolve_model_path(DEFAULT_MODEL) / "tokenizer.json", max_tokens)
    model = mean_pooled(resolve_model_path(DEFAULT_MODEL))
    batches = (question_batches(pairs, seed) if listwise > 0 else batches_of(pairs, seed))[:steps]
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, int(WARMUP * len(batches)), len(batches)
    )
    # Positives are about one pair in seven: weighed up to half the loss, so that predicting the base rate
    # for every pair is no optimum.
    positives = sum(p[2] for p in pairs)
    balance = torch.tensor((len(pairs) - positives) / max(1.0, positives))
    model.train()
    started, running = time.perf_counter(), 0.0
    for step, batch in enumerate(batches, 1):
        ids, mask, types = Reader.encode(tokenizer, [(pairs[i][0], pairs[i][1]) for i in batch])
        labels = torch.tensor([pairs[i][2] for i in batch])
        logits = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=balance)
        if listwise > 0:
            loss = _with_listwise(loss, logits, labels, [pairs[i][0] for i in batch], listwise)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step > 1 else value
        if step % 50 == 0 or step == len(batches):
            elapsed = time.perf_counter() - started
            log(f"  step {step}/{len(batches)}: loss {running:.3f}, {elapsed:.0f} s")
    model.eval()
    return model


def _with_listwise(loss: Any, logits: Any, labels: Any, questions: Sequence[str], weight: float) -> Any:
    """``loss`` plus ``weight`` times the mean, over the batch's questions with both a positive and a
    negative pair, of -log of the softmax share of the question's positives among its pairs."""
    import torch

    rows: dict[str, list[int]] = {}
    for k, question in enumerate(questions):
        rows.setdefault(question, []).append(k)
    terms = []
    for ks in rows.values():
        targets = labels[ks]
        if 0 < targets.sum() < len(ks):
            scores = logits[ks]
            terms.append(torch.logsumexp(scores, 0) - torch.logsumexp(scores[targets > 0], 0))
    return loss + weight * torch.stack(terms).mean() if terms else loss


# Pairs whose trained (torch) logits the card records, so a test can check the exported model against them.
FIXTURE = (
    ("How many agencies participate in Secure Communities?",
     "Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens."),
    ("How many agencies participate in Secure Communities?",
     "Secure Communities was suspended in 2014 and reactivated in 2017."),
    ("Who may a fusion center share data with?",
     "Fusion centers share information with federal, state and local partners."),
    ("What is the salary of a fusion center analyst?",
     "There are about 80 fusion centers across the United States."),
    ("When was the Immigration and Nationality Act passed?",
     "The Immigration and Nationality Act of 1952 consolidated earlier immigration laws."),
    ("What does the Department of Homeland Security do?",
     "The term “Department” means the Department of Homeland Security."),
)  # fmt: skip


def torch_logits(model: Any, pairs: Sequence[tuple[str, str]], max_tokens: int = DEFAULT_READER_TOKENS) -> list[float]:
    """The trained model's logits of ``pairs`` (one pair per call, as the quantized engine reads them)."""
    import torch

    from qa.embed import resolve_model_path

    tokenizer = Reader.tokenizer_of(resolve_model_path(DEFAULT_MODEL) / "tokenizer.json", max_tokens)
    out = []
    with torch.no_grad():
        for pair in pairs:
            ids, mask, types = (torch.from_numpy(a) for a in Reader.encode(tokenizer, [pair]))
            out.append(round(float(model(ids, mask, types)[0, 0]), 6))
    return out


def export(model: Any, folder: Path) -> Path:
    """Write ``model`` to ``folder/model.onnx`` with int8 weights (``int8_weights``) and the tokenizer beside it."""
    import onnx
    import torch

    from qa.embed import resolve_model_path

    folder.mkdir(parents=True, exist_ok=True)
    full = folder / "float.onnx"
    example = torch.ones((2, 8), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            model, (example, example, torch.zeros_like(example)), str(full), dynamo=False, opset_version=17,
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "token_type_ids")}
            | {"logits": {0: "batch"}},
        )  # fmt: skip
    graph = int8_weights(onnx.load(str(full)))
    full.unlink()
    path = folder / "model.onnx"
    tmp = folder / ".model.onnx.tmp"
    onnx.save(graph, str(tmp))
    tmp.replace(path)
    shutil.copyfile(resolve_model_path(DEFAULT_MODEL) / "tokenizer.json", folder / "tokenizer.json")
    return path


# Float initializers with at least this many values are stored as int8 (the matrices and the embeddings).
INT8_MIN_SIZE = 4096


def int8_weights(graph: Any) -> Any:
    """``graph`` with each large float weight stored as int8 with one scale per output column, turned back
    into floats by a Cast and a Mul that onnxruntime folds when it loads the graph (as the int8 export of
    the embedder does): a quarter of the bytes, float arithmetic."""
    import onnx
    from onnx import helper, numpy_helper

    kept, nodes = [], []
    for init in graph.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype != np.float32 or values.size < INT8_MIN_SIZE or values.ndim != 2:
            kept.append(init)
            continue
        scale = np.maximum(np.abs(values).max(axis=0, keepdims=True), 1e-12) / 127.0
        quantized = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
        kept.append(numpy_helper.from_array(quantized, f"{init.name}_int8"))
        kept.append(numpy_helper.from_array(scale.astype(np.float32), f"{init.name}_scale"))
        nodes.append(helper.make_node("Cast", [f"{init.name}_int8"], [f"{init.name}_float"], to=onnx.TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [f"{init.name}_float", f"{init.name}_scale"], [init.name]))
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(kept)
    existing = list(graph.graph.node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes + existing)
    return graph


# The most candidates a question's reread may take (the report's ablation goes this far).
MAX_READ = 4


def rows_to_read(tables: dict[str, Table]) -> dict[str, npt.NDArray[np.bool_]]:
    """For each table, the candidates any first ranker of the fit may hand the cross-encoder: the union of
    each question's MAX_READ best under the ranker fitted on all sets and under each fitted without one
    (``python -m fitting``'s leave-one-out). Only those are scored; the rest stay NaN."""
    names = list(tables)
    rankers = [fit(list(tables.values()), model=DEFAULT_MODEL)]
    rankers += [fit([tables[n] for n in names if n != left], model=DEFAULT_MODEL) for left in names]
    out = {}
    for name, table in tables.items():
        chosen = np.zeros(len(table.label), dtype=bool)
        for ranker in rankers:
            logits = ranker.logits(table.features)
            for rows in question_slices(table):
                order = np.lexsort((np.arange(rows.stop - rows.start), -logits[rows]))[:MAX_READ]
                chosen[rows.start + order] = True
        out[name] = chosen
    return out


def score_tables(
    model_dir: Path, tables: Sequence[Table], texts: dict[str, Texts], chosen: dict[str, npt.NDArray[np.bool_]],
    max_tokens: int = DEFAULT_READER_TOKENS,
) -> list[Table]:  # fmt: skip
    """``tables`` with the ``chosen`` rows of their ``reader`` column scored by the exported model in
    ``model_dir``, as the engine runs it by default (int8 arithmetic, one pair per call, inputs cut to
    ``max_tokens``); NaN elsewhere."""

    reader = Reader(model_dir, max_tokens=max_tokens)
    out = []
    for table in tables:
        started = time.perf_counter()
        scores = np.full(len(table.label), np.nan, dtype=np.float32)
        for q, rows in enumerate(question_slices(table)):
            picked = [r for r in range(rows.start, rows.stop) if chosen[table.name][r]]
            if picked:
                candidates = [texts[table.name].candidates[r] for r in picked]
                scores[picked] = reader.score(texts[table.name].questions[q], candidates)
        took = time.perf_counter() - started
        log(f"  {table.name}: {int(chosen[table.name].sum())} candidates scored in {took:.0f} s")
        out.append(dataclasses.replace(table, reader=scores))
    return out


def held_out_figures(table: Table) -> dict[str, float]:
    """The reader alone on a table it did not see: how often its best-scored candidate holds the answer
    (answerable questions whose scored candidates hold one), and the same for the bi-encoder's similarity
    over the same candidates."""
    assert table.reader is not None
    from qa.features import COLUMN

    reader = similarity = total = 0
    for q, rows in enumerate(question_slices(table)):
        scored = np.flatnonzero(~np.isnan(table.reader[rows])) + rows.start
        if table.unanswerable[q] or not table.label[scored].any():
            continue
        total += 1
        reader += int(table.contained[scored[int(np.argmax(table.reader[scored]))]])
        similarity += int(table.contained[scored[int(np.argmax(table.features[scored, COLUMN["similarity"]]))]])
    return {"questions": total, "reader_top1": round(reader / max(1, total), 4),
            "similarity_top1": round(similarity / max(1, total), 4)}  # fmt: skip


def environment() -> dict[str, object]:
    """What the trained bits depend on beside the data and settings: the kernels and threads training runs
    on, and the versions of the libraries that train, export and run the model."""
    from importlib.metadata import version

    return {
        **KERNELS,
        "threads": TRAIN_THREADS,
        **{package: version(package) for package in ("torch", "transformers", "tokenizers", "onnx", "onnxruntime")},
    }


def trained(
    folder: Path, pairs: Sequence[Pair], steps: int | None, listwise: float = 0.0, seed: int = SEED,
    max_tokens: int = DEFAULT_READER_TOKENS,
) -> float:  # fmt: skip
    """Seconds spent training a fold model on ``pairs`` (``train``'s ``listwise``, ``seed`` and ``max_tokens``) and
    exporting it to ``folder``; a model already there from the same pairs and settings is kept (the run is
    deterministic), and its time reported."""
    recipe: list[Any] = [RECIPE, list(pairs), steps, seed, BATCH, LEARNING_RATE, WARMUP, max_tokens,
                         KERNELS, TRAIN_THREADS]  # fmt: skip
    if listwise > 0:
        recipe.append({"listwise": listwise})
    key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()
    stamp = folder / "trained.json"
    if stamp.is_file() and (folder / "model.onnx").is_file():
        record = json.loads(stamp.read_text(encoding="utf-8"))
        if record.get("key") == key:
            log(f"  kept the model in {folder} (same pairs and settings)")
            return float(record["seconds"])
    started = time.perf_counter()
    export(train(pairs, steps=steps, listwise=listwise, seed=seed, max_tokens=max_tokens), folder)
    seconds = time.perf_counter() - started
    stamp.write_text(json.dumps({"key": key, "seconds": round(seconds)}), encoding="utf-8")
    return seconds


def sha256_of(table: Table, texts: Texts) -> str:
    digest = hashlib.sha256(json.dumps([texts.questions, texts.candidates]).encode())
    digest.update(np.ascontiguousarray(table.label).tobytes())
    return digest.hexdigest()


# The run-time settings the ablation tries (quantized, tokens), the default first; and the sets it scores.
VARIANTS = ((True, DEFAULT_READER_TOKENS), (False, DEFAULT_READER_TOKENS), (True, 64), (True, 256))
ABLATION_SETS = ("gold", "title6", "title8", "xquad")


def ablation(tables: dict[str, Table], texts: dict[str, Texts], count: int) -> str:
    """What each run-time setting of the cross-encoder costs: each set of ABLATION_SETS rescored by its fold
    model under each of VARIANTS, then measured with the reranker fitted on the other sets' committed scores
    (a setting changed at run time, the shipped reranker kept), beside the time per candidate read."""
    from fitting.__main__ import MEAN_HEADER, _mean, _table
    from fitting.fit import choose_threshold, fit_reranker, model_figures, reread_table

    fitted = {}
    for name in ABLATION_SETS:
        rest = [t for n, t in tables.items() if n != name]
        first, second = fit_reranker(rest, model=DEFAULT_MODEL, count=count)
        fitted[name] = (first, second, choose_threshold(second, [reread_table(t, first, count) for t in rest]))
    rows = []
    for quantized, tokens in VARIANTS:
        seconds = pairs = 0.0
        figures = []
        for name in ABLATION_SETS:
            group = next(g for g in FOLDS if name in g)
            reader = Reader(CACHE / DEFAULT_MODEL / "reader" / "-".join(group), max_tokens=tokens,
                            quantized=quantized, threads=1)  # fmt: skip
            table = tables[name]
            assert table.reader is not None
            scores = np.full(len(table.label), np.nan, dtype=np.float32)
            for q, rows_of in enumerate(question_slices(table)):
                picked = [r for r in range(rows_of.start, rows_of.stop) if not np.isnan(table.reader[r])]
                if picked:
                    started = time.perf_counter()
                    scores[picked] = reader.score(texts[name].questions[q], [texts[name].candidates[r] for r in picked])
                    seconds += time.perf_counter() - started
                    pairs += len(picked)
            first, second, threshold = fitted[name]
            variant = dataclasses.replace(table, reader=scores)
            figures.append(model_figures(second, reread_table(variant, first, count), threshold))
        label = f"{'int8' if quantized else 'float'} arithmetic, {tokens} tokens"
        rows.append([label, f"{1000 * seconds / max(1.0, pairs):.2f}", *[f"{v:.3f}" for v in _mean(figures)]])
    title = f"Cross-encoder settings at run time (mean over {', '.join(ABLATION_SETS)}, left out, {count} reread)"
    return title + "\n\n" + _table(rows, ["setting", "ms per candidate", *MEAN_HEADER])


def with_headings(texts: Texts) -> Texts:
    """``texts`` with each candidate as the cross-encoder reads it, after the headings above it
    (``qa.reader.read_as``).

    Raises:
        ValueError: If the texts hold no headings (written before they were kept: rebuild the tables).
    """
    if len(texts.headings) != len(texts.candidates):
        raise ValueError("the tables' texts hold no headings: run python -m fitting --tables")
    read = [read_as(c, h) for c, h in zip(texts.candidates, texts.headings, strict=True)]
    return dataclasses.replace(texts, candidates=read)


def sample_report(
    tables: dict[str, Table], texts: dict[str, Texts], questions: int, listwise: float = 0.0, seed: int = SEED,
    headings: bool = True, max_tokens: int = DEFAULT_READER_TOKENS,
) -> str:  # fmt: skip
    """What another training would give: the fold models trained on at most ``questions`` questions (and as
    many near misses) per set, with ``train``'s ``listwise``, ``seed`` (which also draws the sample) and
    ``max_tokens`` (in training and in scoring), each scoring its held-out group, beside the committed scores
    (the reader alone, then the default configuration's leave-one-dataset-out figures, the first ranker,
    reranker, threshold and gate all fitted on the other sets). ``texts`` are as the models read them:
    ``headings`` says whether each candidate comes after its headings (``with_headings``) or alone, as before
    2026-12-03. Fold models go to the cache; nothing else is written."""
    from fitting.__main__ import HEADER, _pairs, _table
    from fitting.fit import leave_one_out_gated

    pairs = training_pairs(tables, texts, questions, seed)
    folder = f"reader-{questions}-questions" + (f"-listwise-{listwise:g}" if listwise > 0 else "")
    folder += ("" if seed == SEED else f"-seed-{seed}") + ("-headings" if headings else "-text-alone")
    folder += "" if max_tokens == DEFAULT_READER_TOKENS else f"-tokens-{max_tokens}"
    scored = {
        table.name: table
        for _, _, held in fold_models(
            tables, texts, pairs, CACHE / DEFAULT_MODEL / folder, listwise=listwise, seed=seed, max_tokens=max_tokens
        )
        for table in held
    }
    variant = leave_one_out_gated([scored[n] for n in SET_NAMES], model=DEFAULT_MODEL, count=DEFAULT_READER_CANDIDATES)
    committed = leave_one_out_gated(list(tables.values()), model=DEFAULT_MODEL, count=DEFAULT_READER_CANDIDATES)
    rows = []
    for name in SET_NAMES:
        alone, before = held_out_figures(scored[name]), held_out_figures(tables[name])
        rows.append([name, str(len(pairs[name])), f"{alone['reader_top1']:.3f} / {before['reader_top1']:.3f}",
                     f"{variant[name][3]:.2f} / {committed[name][3]:.2f}",
                     *_pairs(variant[name][0], committed[name][0])])  # fmt: skip
    recipe = f"at most {questions} questions per set" + (f", listwise {listwise:g}" if listwise > 0 else "")
    recipe += f", seed {seed}" + ("" if headings else ", candidates read without their headings")
    recipe += "" if max_tokens == DEFAULT_READER_TOKENS else f", inputs cut to {max_tokens} word pieces"
    title = f"Fold models trained on {recipe} / the committed scores; the default configuration, each set left out"
    return title + "\n\n" + _table(rows, ["left out", "pairs", "reader top-1", "gate", *HEADER])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fitting.reader", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 steps per model: a check of the pipeline")
    parser.add_argument("--out", type=Path, default=READER_DIR, help="where the shipped model is written")
    parser.add_argument(
        "--ablation", action="store_true", help="after training: what the run-time settings cost (fold models)"
    )
    parser.add_argument(
        "--questions", type=int, metavar="N", help="train the fold models on at most N questions per set and "
        "print their figures beside the committed scores' (writes nothing but the cache)"
    )  # fmt: skip
    parser.add_argument(
        "--listwise", type=float, metavar="W", help="the same with whole questions per batch and a listwise "
        "loss weighed W beside the pairs' own (docs/fitting.md)"
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, metavar="S", help=f"the same with another seed (of the sample, order and start; {SEED})"
    )
    parser.add_argument(
        "--no-headings", action="store_true", help="the same with each candidate read without its headings"
    )
    parser.add_argument(
        "--tokens", type=int, metavar="N",
        help=f"the same with inputs cut to N word pieces in training and scoring ({DEFAULT_READER_TOKENS})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.update(KERNELS)
    steps = 40 if args.quick else None
    tables = {name: load_table(name) for name in SET_NAMES}
    try:
        texts = {name: load_texts(name, TEXTS) for name in SET_NAMES}
    except FileNotFoundError:
        log(f"the tables' texts are not in {TEXTS}: run python -m fitting --tables first")
        return 1
    try:
        texts = {name: with_headings(t) for name, t in texts.items()} if not args.no_headings else texts
    except ValueError as error:
        log(str(error))
        return 1
    if args.ablation:
        print(ablation(tables, texts, DEFAULT_READER_CANDIDATES))
        return 0
    variants = (args.questions, args.listwise, args.seed, args.tokens)
    if any(v is not None for v in variants) or args.no_headings:
        questions = QUESTIONS_PER_SET if args.questions is None else args.questions
        listwise = 0.0 if args.listwise is None else args.listwise
        tokens = DEFAULT_READER_TOKENS if args.tokens is None else args.tokens
        if questions < 1 or listwise < 0 or not 16 <= tokens <= 512:
            parser.error("--questions must be at least 1, --listwise at least 0, --tokens from 16 to 512")
        seed = SEED if args.seed is None else args.seed
        print(sample_report(tables, texts, questions, listwise, seed, not args.no_headings, tokens))
        return 0
    pairs = training_pairs(tables, texts)
    card: dict[str, Any] = {
        "trained_by": "python -m fitting.reader" + (" --quick" if args.quick else ""),
        "base": DEFAULT_MODEL,
        "settings": {
            "recipe": RECIPE,
            "seed": SEED,
            "questions_per_set": QUESTIONS_PER_SET,
            "positives": POSITIVES,
            "negatives": NEGATIVES,
            "batch": BATCH,
            "learning_rate": LEARNING_RATE,
            "warmup": WARMUP,
            "epochs": 1,
            "max_tokens": DEFAULT_READER_TOKENS,
            "headings": 0 if args.no_headings else HEADINGS_READ,
            "steps": steps,
        },  # fmt: skip
        "environment": environment(),
        "data": {name: sha256_of(tables[name], texts[name]) for name in SET_NAMES},
        "pairs": {name: len(pairs[name]) for name in SET_NAMES},
        "folds": {},
    }
    scored: dict[str, Table] = {}
    for rest, took, held in fold_models(tables, texts, pairs, CACHE / DEFAULT_MODEL / "reader", steps=steps):
        for table in held:
            scored[table.name] = table
            figures = held_out_figures(table)
            log(f"  {table.name} (held out): {figures}")
            card["folds"][table.name] = {"trained_on": rest, "train_seconds": round(took), **figures}
    for name in SET_NAMES:
        save_table(scored[name], TABLES)
    training = [p for name in SET_NAMES for p in pairs[name]]
    log(f"shipped model: {len(training)} pairs from all sets")
    started = time.perf_counter()
    shipped = train(training, steps=steps)
    card["train_seconds"] = round(time.perf_counter() - started)
    card["fixture"] = [
        {"question": q, "text": t, "logit": logit}
        for (q, t), logit in zip(FIXTURE, torch_logits(shipped, FIXTURE), strict=True)
    ]
    export(shipped, args.out)
    card["model_sha256"] = hashlib.sha256((args.out / "model.onnx").read_bytes()).hexdigest()
    tmp = args.out / ".card.tmp"
    tmp.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    tmp.replace(args.out / "card.json")
    log(f"written to {args.out} ({(args.out / 'model.onnx').stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
