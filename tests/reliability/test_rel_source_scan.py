"""What tests/test_no_unsafe_loading.py does not look for: other ways to run code that data smuggles in.

That scan covers pickle and its kin, ``torch.load``, ``eval``, ``exec``, YAML ``load`` and numpy's
``allow_pickle`` over qa/ and api/. This one adds, over the same code: ``compile`` and the builtins
reached through the ``builtins`` module, ``__import__`` and ``importlib.import_module`` of a computed
name, starting processes (``subprocess``, ``os.system``, ``os.popen``, ``os.exec*``, ``os.spawn*``),
and loading models with ``trust_remote_code=True`` or ``weights_only=False``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(path for package in ("qa", "api") for path in (ROOT / package).rglob("*.py"))
PROCESS_CALLS = ("os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn", "pty.spawn")
DANGEROUS_KEYWORDS = {"trust_remote_code": True, "weights_only": False, "shell": True}


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def findings(source: str) -> list[str]:
    """``line N: what`` for each risky construct in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: import {m}" for m in modules if m.split(".")[0] in ("subprocess", "pty")]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in ("compile", "__import__") or name.startswith("builtins."):
            found.append(f"line {node.lineno}: {name}()")
        if name.endswith("import_module") and not (node.args and isinstance(node.args[0], ast.Constant)):
            found.append(f"line {node.lineno}: {name}() of a computed name")
        if name.startswith(PROCESS_CALLS):
            found.append(f"line {node.lineno}: {name}()")
        for keyword in node.keywords:
            bad = DANGEROUS_KEYWORDS.get(keyword.arg or "")
            if bad is not None and isinstance(keyword.value, ast.Constant) and keyword.value.value is bad:
                found.append(f"line {node.lineno}: {keyword.arg}={bad}")
    return found


@pytest.mark.parametrize(
    ("source", "finding"),
    [
        ("code = compile(text, 'x', 'exec')", "line 1: compile()"),
        ("import builtins\nbuiltins.eval(text)", "line 2: builtins.eval()"),
        ("m = __import__(name)", "line 1: __import__()"),
        ("import importlib\nimportlib.import_module(name)", "line 2: importlib.import_module() of a computed name"),
        ("import subprocess", "line 1: import subprocess"),
        ("import os\nos.system(cmd)", "line 2: os.system()"),
        ("import os\nos.execv(p, a)", "line 2: os.execv()"),
        ("AutoModel.from_pretrained(p, trust_remote_code=True)", "line 1: trust_remote_code=True"),
        ("torch.load(p, weights_only=False)", "line 1: weights_only=False"),
    ],
)
def test_the_scan_finds(source: str, finding: str) -> None:
    assert finding in findings(source)


def test_the_scan_passes_safe_code() -> None:
    safe = "import re\nre.compile('x')\nimport importlib\nimportlib.import_module('json')\nmodel.eval()"
    assert findings(safe) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_code_runs_what_data_smuggles_in(path: Path) -> None:
    assert findings(path.read_text(encoding="utf-8")) == []
