"""The CLI's ``--collection``, ``--filter`` and ``qa keys add``: collections apart, filters to their documents."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qa.cli import main
from qa.config import get_settings
from qa.keys import ALL_SCOPES, KeyRing, Scope

ZEBRAS = "# Field notes\n\nThe zebra census counted 4,213 zebras on the northern plain.\n"
HERONS = "# Bird notes\n\nThe heron census counted 58 heron nests on the northern plain.\n"
QUESTION = "What did the census count on the northern plain?"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_THREADS", "1")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _corpus(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.model
def test_collections_are_indexed_and_asked_apart(env: Path, embedder: object) -> None:
    """`qa index --collection` makes the collection; ask, search and show never cross into another one."""
    zebras = _corpus(env / "zebras", {"zebras.md": ZEBRAS})
    herons = _corpus(env / "herons", {"herons.md": HERONS})
    made = invoke("index", str(zebras), "--collection", "mammals")
    assert made.exit_code == 0 and "Made the collection 'mammals'." in made.stderr
    assert invoke("index", str(herons), "--collection", "birds").exit_code == 0
    assert (env / "index" / "collections" / "birds" / "collection.json").is_file()
    for collection, document in (("mammals", "zebras.md"), ("birds", "herons.md")):
        answer = json.loads(invoke("ask", QUESTION, "--collection", collection, "--json").stdout)
        assert {c["document_id"] for c in answer["citations"]} == {document}
        hits = json.loads(invoke("search", "census", "--collection", collection, "--json").stdout)["results"]
        assert {h["document_id"] for h in hits} == {document}
    assert invoke("show", "zebras.md", "--collection", "birds").exit_code == 1
    assert invoke("show", "zebras.md", "--collection", "mammals").stdout == ZEBRAS
    missing = invoke("ask", QUESTION, "--collection", "fish")
    assert missing.exit_code == 1 and "there is no collection named 'fish'" in missing.stderr
    bad = invoke("ask", QUESTION, "--collection", "Fish!")
    assert bad.exit_code == 1 and "a collection name is 1 to 64 of" in bad.stderr


@pytest.mark.model
def test_filter_keeps_ask_and_search_to_matching_documents(env: Path, embedder: object) -> None:
    """Metadata from a sidecar and from front matter, filtered on from the command line."""
    corpus = _corpus(env / "corpus", {"zebras.md": ZEBRAS, "herons.md": "---\ntags: [birds]\n---\n" + HERONS})
    (corpus / "zebras.md.meta.json").write_text(json.dumps({"tags": ["mammals"], "year": 2024}))
    assert invoke("index", str(corpus)).exit_code == 0
    birds = json.loads(invoke("ask", QUESTION, "--filter", '{"tags": "birds"}', "--json").stdout)
    assert {c["document_id"] for c in birds["citations"]} == {"herons.md"}
    assert birds["citations"][0]["document_metadata"] == {"tags": ["birds"]}
    hits = json.loads(invoke("search", "census", "--filter", '{"year": {"gte": 2024}}', "--json").stdout)
    assert {h["document_id"] for h in hits["results"]} == {"zebras.md"}
    shown = json.loads(invoke("show", "zebras.md", "--json").stdout)
    assert shown["metadata"] == {"tags": ["mammals"], "year": 2024}
    unknown = invoke("ask", QUESTION, "--filter", '{"colour": "red"}')
    assert unknown.exit_code == 1 and "unknown field 'colour'" in unknown.stderr
    broken = invoke("search", "census", "--filter", "{tags")
    assert broken.exit_code == 1
    assert (
        "--filter is not valid JSON (Expecting property name enclosed in double quotes at character 1)" in broken.stderr
    )
    deep = invoke("ask", QUESTION, "--filter", "[" * 5000 + "]" * 5000)  # was a RecursionError traceback
    assert deep.exit_code == 1 and "--filter is nested too deeply to parse" in deep.stderr


def test_keys_add_prints_the_key_once_and_stores_its_hash(env: Path) -> None:
    keys_file = env / "keys"
    result = invoke("keys", "add", "--scope", "read:docs", "--scope", "write:docs", "--keys-file", str(keys_file))
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert key.startswith("qa_") and key not in keys_file.read_text()
    ring = KeyRing.of(keys_file.read_text(), [])
    assert ring.scopes_of(key) == frozenset({Scope("read", "docs"), Scope("write", "docs")})
    assert ring.scopes_of(key) != ALL_SCOPES
    bad = invoke("keys", "add", "--scope", "fly:docs", "--keys-file", str(keys_file))
    assert bad.exit_code == 1 and "fly" in bad.stderr
    assert invoke("keys", "add", "--scope", "admin").exit_code == 1  # no file: QA_KEYS_FILE unset


@pytest.mark.parametrize("corpus", ["missing", "empty"])
def test_index_into_a_new_collection_checks_the_corpus_first(env: Path, corpus: str) -> None:
    """Regression: `qa index MISSING --collection ghost` made the collection, then failed on the corpus,
    leaving an empty collection behind."""
    folder = env / corpus
    if corpus == "empty":
        folder.mkdir()
    result = invoke("index", str(folder), "--collection", "ghost")
    assert result.exit_code == 1
    expected = {
        "missing": f"corpus directory {folder} does not exist or is not a directory",
        "empty": f"no readable documents in {folder} (.txt, .md, .html, .pdf)",
    }[corpus]
    assert result.stderr == f"Error: {expected}\n"
    assert not (env / "index" / "collections").exists()
    assert "there is no collection named 'ghost'" in invoke("search", "census", "--collection", "ghost").stderr
