"""The import graph of qa/ and api/, read with ``ast``: every arrow between modules is written here.

A new import between project modules fails this test until it is added to ``ALLOWED`` below, so a new
arrow is a decision, not an accident. The rules behind the table (../shared/STYLE.md, "Layout"):

* ``qa/`` never imports ``api/``; the one exception is the CLI's ``serve`` command (``qa.cli`` ->
  ``api.main``, and ``api.cluster`` for ``--ray``), which starts the web app.
* Leaves import nothing of the project: ``types``, ``errors``, ``tokens``, ``metrics``, ``defaults``
  (the settings' default values) and ``files`` (durable file writes).
* Stages import values (``types``), errors and the few helpers the layout gives them; they never
  import the engine, the build, storage, or a face (``cli``, ``evaluate``, ``report``, the API).
  Three arrows between stages are decisions: ``retrieve`` and ``extract`` read the in-memory index
  they are handed (``qa.index.VectorIndex`` is their input value, not its storage), and ``abstain``
  scores ``extract``'s candidates.
* ``build`` composes the building stages (ingest, chunk, embed, index); ``engine`` the answering ones
  (retrieve, extract, abstain, cite); ``storage`` reads and writes what ``index`` holds in memory;
  ``writes`` is the one write path (sources, commits, recovery, merges) that ``indexing`` and the API call.
* ``api/`` routes reach the core through the engine, the build and the other public modules only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, set[str]] = {
    # the package's public surface (qa/__init__.py), loaded lazily
    "qa": {"qa.build", "qa.embedders", "qa.engine", "qa.errors", "qa.indexing", "qa.ingest", "qa.storage", "qa.types"},
    # leaves
    "qa.types": {"qa.metadata"},
    "qa.errors": set(),
    "qa.tokens": set(),
    "qa.metrics": set(),
    "qa.defaults": set(),
    "qa.files": set(),
    "qa.jsontext": set(),
    # parsing and structure
    "qa.structure": {"qa.sentences", "qa.types"},
    "qa.htmltext": {"qa.types"},
    "qa.sentences": {"qa.types"},
    "qa.ingest": {"qa.errors", "qa.htmltext", "qa.metadata", "qa.structure", "qa.types"},
    "qa.isolate": {"qa.errors", "qa.ingest", "qa.metadata", "qa.types"},
    "qa.sources": {"qa.errors", "qa.files", "qa.ingest", "qa.metadata", "qa.types"},
    # building stages
    "qa.chunk": {"qa.defaults", "qa.sentences", "qa.structure", "qa.types"},
    "qa.embed": {"qa.defaults", "qa.errors"},
    "qa.onnx_embed": {"qa.defaults", "qa.embed", "qa.errors", "qa.files"},
    "qa.embedders": {"qa.defaults", "qa.embed", "qa.errors", "qa.onnx_embed"},
    "qa.reader": {"qa.defaults", "qa.errors", "qa.onnx_embed"},
    "qa.index": {"qa.tokens", "qa.types"},
    "qa.storage": {"qa.errors", "qa.files", "qa.index", "qa.types"},
    "qa.build": {"qa.chunk", "qa.defaults", "qa.embed", "qa.errors", "qa.index", "qa.ingest", "qa.tokens", "qa.types"},
    "qa.writes": {"qa.build", "qa.embed", "qa.errors", "qa.files", "qa.index", "qa.sources", "qa.storage", "qa.types"},
    "qa.indexing": {
        "qa.build",
        "qa.chunk",
        "qa.defaults",
        "qa.embed",
        "qa.embedders",
        "qa.errors",
        "qa.index",
        "qa.ingest",
        "qa.sources",
        "qa.storage",
        "qa.types",
        "qa.writes",
    },
    # the same build's parsing, chunking and embedding on a Ray cluster (a Runner for indexing)
    "qa.cluster": {"qa.build", "qa.chunk", "qa.embedders", "qa.errors", "qa.ingest", "qa.types"},
    # answering stages
    "qa.retrieve": {"qa.filters", "qa.index", "qa.tokens", "qa.types"},
    # retrieval's first stage split over shards (one shard's state, and the searcher that merges them)
    "qa.shards": {"qa.errors", "qa.filters", "qa.index", "qa.retrieve"},
    "qa.question": {"qa.sentences", "qa.tokens"},
    "qa.features": {"qa.index", "qa.question", "qa.sentences", "qa.tokens", "qa.types"},
    "qa.scorer": {"qa.features", "qa.question", "qa.tokens"},
    "qa.selection": {"qa.features", "qa.scorer", "qa.types"},
    "qa.cite": {"qa.ingest", "qa.types"},
    "qa.engine": {
        "qa.cite",
        "qa.config",
        "qa.defaults",
        "qa.embed",
        "qa.errors",
        "qa.features",
        "qa.filters",
        "qa.index",
        "qa.ingest",
        "qa.metadata",
        "qa.question",
        "qa.reader",
        "qa.retrieve",
        "qa.scorer",
        "qa.selection",
        "qa.tokens",
        "qa.types",
    },
    # faces and their helpers
    "qa.records": {"qa.cite", "qa.engine", "qa.metadata", "qa.types"},
    "qa.config": {"qa.defaults"},
    "qa.gold": {"qa.errors", "qa.ingest", "qa.jsontext", "qa.types"},
    "qa.evaluate": {
        "qa.cite",
        "qa.engine",
        "qa.errors",
        "qa.gold",
        "qa.metrics",
        "qa.records",
        "qa.retrieve",
        "qa.types",
    },
    "qa.report": {"qa.evaluate", "qa.metrics"},
    "qa.cli": {
        "api.cluster",
        "api.main",
        "qa.build",
        "qa.cluster",
        "qa.collections",
        "qa.config",
        "qa.defaults",
        "qa.embedders",
        "qa.engine",
        "qa.errors",
        "qa.evaluate",
        "qa.files",
        "qa.filters",
        "qa.gold",
        "qa.indexing",
        "qa.jsontext",
        "qa.keys",
        "qa.metadata",
        "qa.records",
        "qa.report",
        "qa.storage",
        "qa.types",
        "qa.verify",
    },
    # the web app
    "api": set(),
    "api.errors": {"qa.errors"},
    "api.metrics": {"api.state"},
    "api.ratelimit": {"api.errors"},
    "api.middleware": {"api.errors", "api.metrics", "api.ratelimit", "qa.config"},
    "api.schemas": {
        "qa.collections",
        "qa.defaults",
        "qa.engine",
        "qa.errors",
        "qa.filters",
        "qa.ingest",
        "qa.metadata",
        "qa.types",
        "qa.verify",
    },
    "api.state": {
        "qa.collections",
        "qa.config",
        "qa.embed",
        "qa.embedders",
        "qa.engine",
        "qa.errors",
        "qa.index",
        "qa.retrieve",
        "qa.sources",
        "qa.storage",
        "qa.types",
        "qa.writes",
    },
    # the app as a Ray Serve application: shard deployments and the answer deployment in front
    "api.cluster": {
        "api.main",
        "qa.cluster",
        "qa.config",
        "qa.filters",
        "qa.index",
        "qa.retrieve",
        "qa.shards",
        "qa.storage",
    },
    "api.deps": {"api.collections", "api.state", "qa.collections", "qa.config", "qa.engine", "qa.errors", "qa.keys"},
    "api.render": {"qa.cite", "qa.structure", "qa.types"},
    "api.pages": {"api.deps", "api.render", "api.state", "qa.engine", "qa.errors"},
    "api.routes": {"api.schemas"},
    "api.routes.ask": {"api.deps", "api.routes", "api.schemas", "qa.defaults", "qa.engine", "qa.records", "qa.types"},
    "api.routes.docs": set(),
    "api.routes.health": {"api.deps", "api.routes", "api.schemas"},
    "api.routes.search": {"api.deps", "api.routes", "api.schemas", "qa.cite", "qa.metadata", "qa.records"},
    "api.routes.documents": {
        "api.deps",
        "api.routes",
        "api.schemas",
        "api.state",
        "qa.build",
        "qa.cite",
        "qa.config",
        "qa.engine",
        "qa.ingest",
        "qa.isolate",
        "qa.metadata",
        "qa.sources",
        "qa.structure",
        "qa.types",
    },
    "api.main": {
        "api.collections",
        "api.deps",
        "api.errors",
        "api.metrics",
        "api.middleware",
        "api.pages",
        "api.routes.ask",
        "api.routes.collections",
        "api.routes.docs",
        "api.routes.documents",
        "api.routes.health",
        "api.routes.search",
        "api.routes.verify",
        "api.state",
        "qa.collections",
        "qa.config",
        "qa.embed",
        "qa.engine",
        "qa.keys",
        "qa.retrieve",
    },
    "api.collections": {"api.state", "qa.build", "qa.collections", "qa.errors", "qa.retrieve", "qa.storage"},
    "api.routes.collections": {"api.collections", "api.deps", "api.routes", "api.schemas", "qa.collections", "qa.keys"},
    "qa.collections": {"qa.errors", "qa.files"},
    "api.routes.verify": {"api.deps", "api.routes", "api.schemas", "qa.engine", "qa.errors", "qa.types", "qa.verify"},
    "qa.verify": {"qa.cite", "qa.types"},
    "qa.filters": {"qa.errors", "qa.jsontext", "qa.metadata"},
    "qa.keys": {"qa.errors", "qa.files"},
    "qa.metadata": {"qa.errors"},
}
# The one arrow from the core to the web app: `qa serve` starts it.
CORE_TO_API = {("qa.cli", "api.main"), ("qa.cli", "api.cluster")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(source: str) -> set[str]:
    """The project modules a source file imports, anywhere in it (inside functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in ("qa", "api"):
                continue
            if node.module in ("qa", "api", "api.routes"):  # `from api.routes import ask`: submodules, or names
                found |= {f"{node.module}.{alias.name}" for alias in node.names if _is_module(node.module, alias.name)}
                if any(not _is_module(node.module, alias.name) for alias in node.names):
                    found.add(node.module)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in ("qa", "api")}
    return found


def _is_module(package: str, name: str) -> bool:
    base = ROOT.joinpath(*package.split("."))
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    files = sorted([*(ROOT / "qa").rglob("*.py"), *(ROOT / "api").rglob("*.py")])
    return {module_name(p): project_imports(p.read_text(encoding="utf-8")) - {module_name(p)} for p in files}


def test_the_scanner_sees_every_kind_of_import() -> None:
    source = (
        "from __future__ import annotations\nimport qa.types\nfrom qa.errors import QAError\n"
        "def f():\n    from api.main import create_app\n"
        "if TYPE_CHECKING:\n    from qa.engine import Engine\n"
    )
    assert project_imports(source) == {"qa.types", "qa.errors", "api.main", "qa.engine"}


def test_every_module_is_in_the_table() -> None:
    assert sorted(set(graph()) - set(ALLOWED)) == [], "a new module: add its imports to ALLOWED"
    assert sorted(set(ALLOWED) - set(graph())) == [], "a module in ALLOWED no longer exists"


def test_every_import_between_modules_is_allowed() -> None:
    unexpected = {m: sorted(deps - ALLOWED.get(m, set())) for m, deps in graph().items()}
    assert {m: d for m, d in unexpected.items() if d} == {}


def test_the_table_has_no_arrow_the_code_lacks() -> None:
    stale = {m: sorted(ALLOWED[m] - deps) for m, deps in graph().items() if m in ALLOWED}
    assert {m: d for m, d in stale.items() if d} == {}


def test_the_core_never_imports_the_web_app_but_to_serve_it() -> None:
    arrows = {(m, d) for m, deps in graph().items() if m.startswith("qa") for d in deps if d.startswith("api")}
    assert arrows == CORE_TO_API


def test_leaves_and_stages_never_import_a_composer_or_a_face() -> None:
    composers = {"qa.engine", "qa.build", "qa.indexing", "qa.storage", "qa.cli", "qa.evaluate", "qa.report"}
    stages = ["qa.types", "qa.errors", "qa.tokens", "qa.structure", "qa.sentences", "qa.ingest", "qa.chunk",
              "qa.embed", "qa.index", "qa.retrieve", "qa.question", "qa.features", "qa.scorer", "qa.selection",
              "qa.cite"]  # fmt: skip
    assert {s: sorted(graph()[s] & composers) for s in stages if graph()[s] & composers} == {}
