"""Where a write in the server starts from (``api.state._latest_index``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from api.state import Service, _latest_index
from qa.build import update_index
from qa.config import Settings
from qa.embed import HashEmbedder
from qa.engine import Engine
from qa.ingest import parse_document
from qa.storage import load_index, make_current, stage_commit


def test_a_write_starts_from_the_engine_served_now_not_one_read_before_a_reload(index_copy: Path) -> None:
    """Regression: a writer that read ``service.engine`` before a request swapped in another process's
    build built on the older index, undoing that process's write (a deleted document came back)."""
    embedder = HashEmbedder()
    service = Service(Settings(index_dir=index_copy), SimpleNamespace(engine=None))
    before = Engine(load_index(index_copy, model=embedder.name), embedder)
    service.swap(before)
    # Another process commits a commit with one more document, and a request here reloads it.
    note = parse_document("notes/puffins.md", b"# Wildlife\n\nPuffins nest on the cliffs.\n")
    make_current(index_copy, stage_commit(update_index(before.index, embedder, add=[note]), index_copy))
    after = Engine(load_index(index_copy, model=embedder.name), embedder)
    service.swap(after)
    # The writer still holds ``before`` (read before the reload): it must start from ``after``.
    assert sorted(_latest_index(service, before).documents) == sorted(after.index.documents)
    assert "notes/puffins.md" in _latest_index(service, before).documents
