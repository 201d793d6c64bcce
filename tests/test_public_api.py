"""The library's public surface: ``qa.__all__``, each name importable from ``qa`` and the same object as at home."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import qa

PUBLIC = [
    "Answer", "Citation", "Document", "Engine", "Passage", "QAError", "build_index", "index_corpus", "load_corpus",
    "load_embedder", "load_index", "parse_document", "save_index", "update_index",
]  # fmt: skip


def test_all_lists_the_public_names() -> None:
    assert qa.__all__ == PUBLIC == sorted(qa._HOMES)


def test_each_name_imports_from_qa_as_the_object_its_module_defines() -> None:
    from qa import Engine, build_index, load_index

    assert Engine is import_module("qa.engine").Engine
    assert build_index is import_module("qa.build").build_index
    assert load_index is import_module("qa.storage").load_index
    for name in PUBLIC:
        assert getattr(qa, name) is getattr(import_module(qa._HOMES[name]), name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        qa.Nope  # noqa: B018
    except AttributeError as exc:
        assert str(exc) == "module 'qa' has no attribute 'Nope'"
    else:
        raise AssertionError("qa.Nope resolved")


def test_importing_qa_loads_no_heavy_library() -> None:
    """``qa --help`` imports the package: it must not pull numpy, FAISS or torch."""
    code = "import sys, qa, qa.cli; print(sorted(m for m in ('numpy', 'faiss', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
