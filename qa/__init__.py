"""qa-cite: answers you can check, word for word.

The public surface, for using the library without the CLI or the HTTP API::

    from pathlib import Path
    from qa import Engine, index_corpus, load_embedder, load_index

    index_corpus(Path("corpus"), Path("index"))            # build (skipped when nothing changed)
    embedder = load_embedder()                              # all-MiniLM-L6-v2, shipped in a package
    engine = Engine(load_index(Path("index")), embedder)
    answer = engine.ask("How many agencies participate in Secure Communities?")
    answer.citations[0].quote                               # verbatim: text[start:end] of its document

Names load on first use, so ``import qa`` stays cheap (the CLI's ``--help`` imports no model).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from qa.build import build_index, update_index
    from qa.embedders import load_embedder
    from qa.engine import Engine
    from qa.errors import QAError
    from qa.indexing import index_corpus
    from qa.ingest import load_corpus, parse_document
    from qa.storage import load_index, save_index
    from qa.types import Answer, Citation, Document, Passage

# Each module of the public surface, imported on first use (by literal names: no computed imports).
_MODULES: dict[str, Callable[[], ModuleType]] = {
    "qa.types": lambda: import_module("qa.types"),
    "qa.engine": lambda: import_module("qa.engine"),
    "qa.errors": lambda: import_module("qa.errors"),
    "qa.build": lambda: import_module("qa.build"),
    "qa.indexing": lambda: import_module("qa.indexing"),
    "qa.ingest": lambda: import_module("qa.ingest"),
    "qa.embedders": lambda: import_module("qa.embedders"),
    "qa.storage": lambda: import_module("qa.storage"),
}
# Each public name and the module that defines it.
_HOMES = {
    "Answer": "qa.types",
    "Citation": "qa.types",
    "Document": "qa.types",
    "Passage": "qa.types",
    "Engine": "qa.engine",
    "QAError": "qa.errors",
    "build_index": "qa.build",
    "update_index": "qa.build",
    "index_corpus": "qa.indexing",
    "load_corpus": "qa.ingest",
    "parse_document": "qa.ingest",
    "load_embedder": "qa.embedders",
    "load_index": "qa.storage",
    "save_index": "qa.storage",
}
__all__ = [
    "Answer", "Citation", "Document", "Engine", "Passage", "QAError", "build_index", "index_corpus", "load_corpus",
    "load_embedder", "load_index", "parse_document", "save_index", "update_index",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(_MODULES[home](), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
