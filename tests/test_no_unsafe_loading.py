"""No code in qa/ or api/ may run code hidden in data: no pickle, marshal, eval, exec or unsafe YAML.

The scan reads the syntax tree, so a comment or a docstring that names ``pickle`` is not a finding,
and an alias (``import numpy as xp``) does not hide a call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(path for package in ("qa", "api") for path in (ROOT / package).rglob("*.py"))

# Modules whose loaders execute code from the bytes they read.
UNSAFE_MODULES = frozenset({"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"})
UNSAFE_BUILTINS = frozenset({"eval", "exec"})
# (module, function) pairs that unpickle or construct arbitrary objects.
UNSAFE_FUNCTIONS = frozenset(
    {("torch", "load"), ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("pandas", "read_pickle")}
)


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> module or "module.function"
        self.findings: list[str] = []

    def _flag(self, node: ast.AST, what: str) -> None:
        self.findings.append(f"line {getattr(node, 'lineno', '?')}: {what}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            self.aliases[alias.asname or root] = alias.name if alias.asname else root
            if root in UNSAFE_MODULES:
                self._flag(node, f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = (node.module or "").split(".")[0]
        if module in UNSAFE_MODULES:
            self._flag(node, f"from {node.module} import ...")
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            if (module, alias.name) in UNSAFE_FUNCTIONS:
                self._flag(node, f"from {module} import {alias.name}")

    def _qualified(self, func: ast.expr) -> str:
        """``module.function`` for a call through an imported name, else ""."""
        if isinstance(func, ast.Name):
            return self.aliases.get(func.id, "")
        if isinstance(func, ast.Attribute):
            base = func.value
            parts = [func.attr]
            while isinstance(base, ast.Attribute):
                parts.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in self.aliases:
                module = self.aliases[base.id].split(".")[0]
                return f"{module}.{'.'.join(reversed(parts))}"
        return ""

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in UNSAFE_BUILTINS and func.id not in self.aliases:
            self._flag(node, f"{func.id}()")
        name = self._qualified(func)
        module, _, function = name.partition(".")
        if (module, function) in UNSAFE_FUNCTIONS:
            self._flag(node, f"{name}()")
        if name in ("numpy.load", "numpy.lib.npyio.load") and not _keyword_is(node, "allow_pickle", False):
            self._flag(node, f"{name}() without allow_pickle=False")
        for keyword in node.keywords:
            if keyword.arg == "allow_pickle" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                self._flag(node, "allow_pickle other than False")
        self.generic_visit(node)


def _keyword_is(node: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in node.keywords)


def find_unsafe(source: str) -> list[str]:
    """Findings in one module's source, as ``line N: what``."""
    scanner = _Scanner()
    scanner.visit(ast.parse(source))
    return scanner.findings


# --- the scanner finds what it looks for -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "finding"),
    [
        ("import pickle", "line 1: import pickle"),
        ("from pickle import loads", "line 1: from pickle import ..."),
        ("import marshal as m", "line 1: import marshal"),
        ("import joblib", "line 1: import joblib"),
        ("eval('1')", "line 1: eval()"),
        ("exec('x = 1')", "line 1: exec()"),
        ("import torch\ntorch.load('m.pt')", "line 2: torch.load()"),
        ("from torch import load", "line 1: from torch import load"),
        ("import yaml\nyaml.load(s)", "line 2: yaml.load()"),
        ("import numpy as np\nnp.load('a.npy')", "line 2: numpy.load() without allow_pickle=False"),
        ("import numpy as xp\nxp.load('a.npy', allow_pickle=True)", "line 2: numpy.load() without allow_pickle=False"),
        ("from numpy import load\nload('a.npy')", "line 2: numpy.load() without allow_pickle=False"),
        ("import bm25s\nbm25s.BM25.load(p, allow_pickle=True)", "line 2: allow_pickle other than False"),
    ],
)
def test_scanner_finds_unsafe_loading(source: str, finding: str) -> None:
    assert finding in find_unsafe(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""We never use pickle or eval."""',
        "import numpy as np\nnp.load('a.npy', mmap_mode='r', allow_pickle=False)",
        "import json\njson.loads('{}')",
        "import yaml\nyaml.safe_load(s)",
        "import bm25s\nbm25s.BM25.load(p)",
        "import faiss\nfaiss.read_index(p)",
        "model.eval()",  # torch's Module.eval, not the builtin
    ],
)
def test_scanner_passes_safe_code(source: str) -> None:
    assert find_unsafe(source) == []


# --- the code base -----------------------------------------------------------------------------------


def test_sources_were_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in SOURCES}
    assert {"qa/index.py", "qa/ingest.py", "qa/embed.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_unsafe_loading(path: Path) -> None:
    assert find_unsafe(path.read_text(encoding="utf-8")) == []
