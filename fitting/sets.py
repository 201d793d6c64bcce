"""The six sets the answer scorer is fitted and measured on, each as corpora with their questions.

A set is one or more corpora (documents plus the questions asked of them):

=============  ==========================================================================  =========
``gold``       ``tests/data/gold.jsonl`` over the default corpus                             in repo
``title6``     ``tests/data/uscode-title6.jsonl`` over US Code Title 6                     shared
``title8``     ``tests/data/uscode-title8.jsonl`` over US Code Title 8                     shared
``xquad``      XQuAD English dev (SQuAD v1.1), its articles as the corpus                  shared
``selqa``      SelQA dev: one document per (article, section), its sentences as paragraphs shared
``policyqa``   PolicyQA dev: each question asked of its own policy (one corpus per policy) shared
=============  ==========================================================================  =========

"shared" is ``../shared/datasets`` (``QA_SHARED_DIR`` moves it). The product never reads these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.gold import GoldItem, load_jsonl, load_squad, squad_documents
from qa.ingest import load_corpus, parse_document
from qa.types import Document

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("QA_SHARED_DIR", ROOT.parent / "shared")) / "datasets"
SET_NAMES = ("gold", "title6", "title8", "xquad", "selqa", "policyqa")


@dataclass(frozen=True, slots=True)
class Corpus:
    """Documents and the questions asked of them; ``name`` is unique within its set."""

    name: str
    documents: list[Document]
    items: list[GoldItem]


def available(name: str) -> bool:
    """Whether a set's source files are here (the shared sets need ``../shared/datasets``)."""
    return name == "gold" or _source(name).exists()


def _source(name: str) -> Path:
    return {
        "title6": SHARED / "uscode" / "title06",
        "title8": SHARED / "uscode" / "title08",
        "xquad": SHARED / "xquad-en-dev" / "xquad-en-dev.json",
        "selqa": SHARED / "selqa-dev" / "selqa-ass-dev.json",
        "policyqa": SHARED / "policyqa-dev" / "policyqa-dev.json",
    }[name]


def corpora(name: str) -> Iterator[Corpus]:
    """The corpora of set ``name`` (one of SET_NAMES), in a fixed order."""
    if name == "gold":
        yield Corpus("corpus", load_corpus(ROOT / "corpus")[0], load_jsonl(ROOT / "tests" / "data" / "gold.jsonl"))
    elif name in ("title6", "title8"):
        gold = ROOT / "tests" / "data" / f"uscode-{name}.jsonl"
        yield Corpus(name, load_corpus(_source(name))[0], load_jsonl(gold))
    elif name == "xquad":
        documents, items = load_squad(_source(name))
        yield Corpus(name, documents, items)
    elif name == "selqa":
        yield selqa(_source(name))
    elif name == "policyqa":
        data = json.loads(_source(name).read_text(encoding="utf-8"))["data"]
        for number, article in enumerate(data):
            documents, items = squad_documents([article], first=number)
            yield Corpus(documents[0].id, documents, items)
    else:
        raise ValueError(f"unknown set {name!r}; the sets are {', '.join(SET_NAMES)}")


def selqa(path: Path) -> Corpus:
    """SelQA as a corpus: one Markdown document per (article, section); each answer is its answer sentence."""
    records = json.loads(path.read_text(encoding="utf-8"))
    documents: dict[tuple[str, str], Document] = {}
    items: list[GoldItem] = []
    for number, record in enumerate(records):
        key = (str(record["article"]), str(record["section"]))
        sentences = [str(s) for s in record["candidates"]]
        if key not in documents:
            text = f"# {key[0]}\n\n## {key[1]}\n\n" + "\n\n".join(sentences) + "\n"
            slug = "".join(c if c.isalnum() else "-" for c in f"{key[0]}-{key[1]}")[:80]
            doc_id = f"{len(documents) + 1:04d}-{slug}.md"
            documents[key] = parse_document(doc_id, text.encode("utf-8"), title=key[0])
        answers = tuple(dict.fromkeys(sentences[i] for i in record["answers"]))
        items.append(GoldItem(id=f"selqa-{number:04d}", question=str(record["question"]), answers=answers))
    return Corpus("selqa", list(documents.values()), items)
