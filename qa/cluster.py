"""Index on a Ray cluster: parsing and chunking as Ray tasks, embedding in a Ray Data actor pool.

``RayRunner`` is the ``qa.indexing.Runner`` of ``qa index --ray``. Only the work moves: what to
index, the segments' contents and order, writing and committing them stay in
``qa.indexing.index_corpus``, on the machine that runs it, so the index equals a local build's
(vectors within float rounding: an actor embeds its batches with other neighbours).

Workers need this package installed (the head's Python environment on a local cluster). They get
documents and texts through Ray's object store, not files: only the driver reads the corpus and
writes the index. Ray is imported here and nowhere on the single-machine path (``pip install
'qa-cite[ray]'``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from qa.build import Progress, SegmentPlan
from qa.chunk import chunk_document
from qa.embedders import load_embedder
from qa.errors import QAError
from qa.ingest import Problem, parse_or_problem
from qa.types import Document, Passage

T = TypeVar("T")

# Files a parse task reads, and documents a chunk task cuts: enough to outweigh a task's overhead.
PARSE_GROUP = 64
CHUNK_GROUP = 64
# Texts per embedding call in an actor (the local build's batch), and per Ray Data block: one call per
# block, so that the blocks spread evenly over the actors (with 4 calls a block, 1,272 texts made a block
# of 1,024 for one actor and one of 248 for the other).
DEFAULT_BATCH_SIZE = 256


class ClusterError(QAError):
    """Ray is missing, or the cluster cannot be reached."""


def ray_module() -> Any:
    """The ``ray`` module, or a ClusterError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterError("Ray is not installed: pip install 'qa-cite[ray]'") from exc
    return ray


def connect(address: str | None) -> Any:
    """Join the Ray cluster at ``address`` (None or ``"local"``: start one on this machine, as ``ray.init``
    does), unless joined already."""
    ray = ray_module()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return ray


def groups(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in runs of ``size``, in order.

    Example:
        >>> groups([1, 2, 3, 4, 5], 2)
        [[1, 2], [3, 4], [5]]
    """
    return [items[i : i + size] for i in range(0, len(items), size)]


def parse_files(files: Sequence[tuple[str, bytes]]) -> list[Document | Problem]:
    """A parse task's work: each file's document, or why it was refused."""
    return [parse_or_problem(doc_id, data) for doc_id, data in files]


def chunk_documents(documents: Sequence[Document], max_chars: int) -> list[list[Passage]]:
    """A chunk task's work: each document's passages."""
    return [chunk_document(doc, max_chars=max_chars) for doc in documents]


class EmbedActor:
    """One embedding model per actor, loaded once; embeds a batch of texts (a Ray Data ``map_batches`` class)."""

    def __init__(self, model: str, threads: int) -> None:
        self.embedder = load_embedder(model, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed_passages([str(text) for text in batch["text"]])
        return {"plan": batch["plan"], "row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


def embedding_order(plans: Sequence[SegmentPlan]) -> list[tuple[int, list[int], list[str]]]:
    """Each plan's texts, longest first (a batch then pads its texts to similar lengths), with their rows."""
    ordered = []
    for i, plan in enumerate(plans):
        texts = plan.texts()
        rows = sorted(range(len(texts)), key=lambda j: -len(texts[j]))
        ordered.append((i, rows, [texts[j] for j in rows]))
    return ordered


@dataclass
class RayRunner:
    """Runs a build's parsing, chunking and embedding on a Ray cluster (``qa.indexing.Runner``).

    Attributes:
        model: The embedding model each actor loads.
        address: The cluster (``ray.init``'s address; None starts one on this machine).
        actors: Embedding actors, one model and ``cpus_per_actor`` CPUs each.
        batch_size: Texts per embedding call.
        cpus_per_actor: CPUs an actor reserves, and its model's threads.
    """

    model: str
    address: str | None = None
    actors: int = 2
    batch_size: int = DEFAULT_BATCH_SIZE
    cpus_per_actor: int = 1

    def __post_init__(self) -> None:
        self.ray = connect(self.address)

    def parse(self, files: list[tuple[str, bytes]]) -> list[Document | Problem]:
        task = self.ray.remote(num_cpus=1)(parse_files)
        return [item for part in self.ray.get([task.remote(g) for g in groups(files, PARSE_GROUP)]) for item in part]

    def chunk(self, documents: list[Document], max_chars: int) -> dict[str, list[Passage]]:
        task = self.ray.remote(num_cpus=1)(chunk_documents)
        runs = groups(documents, CHUNK_GROUP)
        parts = self.ray.get([task.remote(run, max_chars) for run in runs])
        return {
            doc.id: passages
            for run, part in zip(runs, parts, strict=True)
            for doc, passages in zip(run, part, strict=True)
        }

    def embed(self, plans: list[SegmentPlan], progress: Progress | None) -> Iterator[np.ndarray]:
        """Stream every plan's texts through one actor pool; yield each plan's matrix once all of it is back.

        Ray Data retries the batches of an actor that dies, on a replacement actor.
        """
        import pyarrow as pa

        ray = self.ray
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the build reports its own progress
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ordered = embedding_order(plans)
        total = sum(len(texts) for _, _, texts in ordered)
        block = self.batch_size
        tables = [
            pa.table({"plan": np.full(len(part), i), "row": np.asarray(rows[lo : lo + block]), "text": part})
            for i, rows, texts in ordered
            for lo in range(0, len(texts), block)
            if (part := texts[lo : lo + block])
        ]
        vectors: list[np.ndarray | None] = [None] * len(plans)
        missing = [len(texts) for _, _, texts in ordered]
        done = 0
        following = iter(range(len(plans)))
        waiting = next(following, None)
        for batch in self._batches(tables):
            for i in (int(i) for i in np.unique(batch["plan"])):
                mine = batch["plan"] == i
                matrix = vectors[i]
                if matrix is None:
                    matrix = vectors[i] = np.empty((len(ordered[i][1]), batch["vector"].shape[1]), np.float32)
                matrix[batch["row"][mine]] = batch["vector"][mine]
                missing[i] -= int(mine.sum())
            done += len(batch["row"])
            if progress is not None:
                progress(done, total)
            while waiting is not None and missing[waiting] == 0:
                yield _taken(vectors, waiting)
                waiting = next(following, None)
        while waiting is not None:
            if missing[waiting]:
                raise ClusterError(f"the cluster returned {len(ordered[waiting][2]) - missing[waiting]} of "
                                   f"{len(ordered[waiting][2])} vectors of segment {waiting}")  # fmt: skip
            yield _taken(vectors, waiting)
            waiting = next(following, None)

    def _batches(self, tables: list[Any]) -> Iterator[dict[str, np.ndarray]]:
        """The embedded rows of the tables, a batch at a time, in the order they come back."""
        if not tables:
            return
        dataset = self.ray.data.from_arrow(tables).map_batches(
            EmbedActor,
            fn_constructor_kwargs={"model": self.model, "threads": self.cpus_per_actor},
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=self.ray.data.ActorPoolStrategy(size=min(self.actors, len(tables))),  # no idle actors
            num_cpus=self.cpus_per_actor,
        )
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")


def _taken(vectors: list[np.ndarray | None], i: int) -> np.ndarray:
    """Plan ``i``'s matrix, no longer held here (a plan with nothing to embed has an empty one)."""
    matrix = vectors[i]
    vectors[i] = None
    return matrix if matrix is not None else np.zeros((0, 0), np.float32)
