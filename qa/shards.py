"""Search split over shards: each shard searches some of the segments, the asker merges.

A shard (``Shard``) loads the same commit as the process asking, makes the FAISS indexes of its
own segments only (``assign``), and answers dense and lexical searches over them with the
commit's corpus-wide statistics (IDF, mean length, live rows). ``ShardedSearch`` is the
``qa.retrieve.Searcher`` that asks every shard once per question (both searches in one request)
and merges their lists with ``qa.retrieve.best``:
since each segment's list is the same wherever it is searched, and the merge orders by score then
corpus position, the result equals a search of the whole index in one process.

Requests name the commit they were made against, and rows are that commit's rows. A shard that
cannot serve that commit (the asker read an older or newer one than the shard can load) refuses
with ``StaleCommit``, which the asker reports as a 503 to retry, never as a partial answer.
The transport (Ray Serve in ``api.cluster``) is outside this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.errors import QAError
from qa.filters import Filter
from qa.index import VectorIndex
from qa.retrieve import Ranking, best, search_both

# The commits a shard keeps loaded: the newest and the one before, for askers that have not moved yet.
KEPT_COMMITS = 2
STALE = "the index changed while the question was being answered: ask again"


class ShardUnavailable(QAError):
    """A shard did not answer (it is restarting, or gone): the answer would be partial."""

    status = 503


class StaleCommit(ShardUnavailable):
    """A shard cannot serve the commit a request was made against (the index changed meanwhile)."""


def assign(segments: Sequence[tuple[str, int]], shards: int) -> list[frozenset[str]]:
    """Segment names per shard: largest first, each to the shard with the fewest passages so far.

    Ties go to the lower shard, and equal sizes in name order, so every process that loads the
    same commit assigns the same way.

    Example:
        >>> assign([("a", 10), ("b", 30), ("c", 15), ("d", 5)], 2)
        [frozenset({'b'}), frozenset({'a', 'c', 'd'})]
    """
    if shards < 1:
        raise ValueError(f"shards ({shards}) must be at least 1")
    loads = [0] * shards
    owned: list[set[str]] = [set() for _ in range(shards)]
    for name, size in sorted(segments, key=lambda item: (-item[1], item[0])):
        shard = min(range(shards), key=lambda i: (loads[i], i))
        owned[shard].add(name)
        loads[shard] += size
    return [frozenset(names) for names in owned]


def commit_name(index: VectorIndex) -> str:
    """The commit a view was loaded from (its file name), which requests carry."""
    if index.path is None:
        raise ShardUnavailable("a sharded search needs an index loaded from disk")
    return Path(index.path).name


def owned_by(index: VectorIndex, shard: int, shards: int) -> frozenset[str]:
    """The names of the segments of ``index`` that ``shard`` of ``shards`` searches."""
    return assign([(s.name, len(s.passages)) for s in index.segments], shards)[shard]


@dataclass
class Shard:
    """One shard's state: the commits it has loaded, and its segments of each.

    Attributes:
        load: Loads the current commit of the index, reusing the segments of the view given
            (``qa.storage.load_index`` with ``search=False``).
    """

    load: Callable[[VectorIndex | None], VectorIndex]
    shard: int
    shards: int
    views: dict[str, tuple[VectorIndex, frozenset[str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def view(self, commit: str) -> tuple[VectorIndex, frozenset[str]]:
        """The view of ``commit`` and this shard's segments of it, loading the current commit if needed.

        Raises:
            StaleCommit: If ``commit`` is neither loaded nor current.
        """
        with self.lock:
            if commit not in self.views:
                newest = next(reversed(self.views.values()))[0] if self.views else None
                index = self.load(newest)
                name = commit_name(index)
                if name not in self.views:
                    owned = owned_by(index, self.shard, self.shards)
                    for segment in index.segments:
                        if segment.name in owned:
                            segment.searchable()
                    self.views[name] = (index, owned)
                    while len(self.views) > KEPT_COMMITS:
                        del self.views[next(iter(self.views))]
            if commit not in self.views:
                raise StaleCommit(STALE)
            return self.views[commit]

    def search(
        self,
        commit: str,
        query: npt.NDArray[np.float32] | None,
        tokens: list[str] | None,
        n: int,
        where: Filter | None = None,
    ) -> tuple[Ranking, Ranking]:
        """Dense and lexical rankings (rows of ``commit``, scores) of this shard's segments' live passages.

        Either is empty when its input is None (``qa.retrieve.search_both``); ``where`` filters documents.
        """
        index, owned = self.view(commit)
        vector = np.asarray(query, dtype=np.float32) if query is not None else None
        return search_both(index, vector, tokens, n, only=owned, where=where)


# Asks every shard for (commit, query vector, tokens, n, filter) and returns their rankings, or raises
# ShardUnavailable.
FanOut = Callable[
    [str, npt.NDArray[np.float32] | None, list[str] | None, int, Filter | None], list[tuple[Ranking, Ranking]]
]


@dataclass(frozen=True)
class ShardedSearch:
    """The ``qa.retrieve.Searcher`` that asks every shard once and merges their rankings exactly."""

    fan_out: FanOut

    def search(
        self,
        index: VectorIndex,
        query: npt.NDArray[np.float32] | None,
        tokens: list[str] | None,
        n: int,
        where: Filter | None = None,
    ) -> tuple[Ranking, Ranking]:
        if n <= 0 or not index.n_passages or (query is None and tokens is None):
            return [], []
        found = self.fan_out(commit_name(index), query, tokens, n, where)
        dense = best(index, [pair for ranking, _ in found for pair in ranking], n)
        lexical = best(index, [pair for _, ranking in found for pair in ranking], n)
        return dense, lexical
