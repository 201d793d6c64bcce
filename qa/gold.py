"""Gold question sets: the project's JSON Lines format and SQuAD v1.1/v2 JSON.

JSON Lines (see docs/gold-format.md), one object per line::

    {"id": "g001", "question": "...", "answers": ["..."], "sections": ["..."], "unanswerable": false}

SQuAD files carry their own paragraphs: each article becomes one Markdown
document (its title as the heading, then its paragraphs in order, separated
by blank lines), and every gold answer is mapped to offsets in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import CorpusError
from qa.ingest import parse_document
from qa.types import Document


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One question with what counts as a right answer.

    Attributes:
        spans: Where the gold answers lie, as (document id, start, end); SQuAD only.
        paragraph: The (document id, start, end) of the paragraph holding the answer; SQuAD only.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    sections: tuple[str, ...] = ()
    unanswerable: bool = False
    spans: tuple[tuple[str, int, int], ...] = ()
    paragraph: tuple[str, int, int] | None = None


def _item(record: dict[str, Any], line: int) -> GoldItem:
    try:
        item = GoldItem(
            id=str(record.get("id", line)),
            question=str(record["question"]),
            answers=tuple(str(a) for a in record.get("answers", [])),
            sections=tuple(str(s) for s in record.get("sections", [])),
            unanswerable=bool(record.get("unanswerable", False)),
        )
    except (KeyError, TypeError) as exc:
        raise CorpusError(f"gold line {line}: missing or invalid field ({exc})") from exc
    if not item.unanswerable and not item.answers:
        # Such an item can never be answered right: it would only lower every figure it is counted in.
        raise CorpusError(f"gold line {line}: an answerable question needs at least one answer (or unanswerable: true)")
    return item


def load_jsonl(path: Path) -> list[GoldItem]:
    """Read a gold set in the project's JSON Lines format.

    Raises:
        CorpusError: On a line that is not a JSON object with a question.
    """
    items: list[GoldItem] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise CorpusError(f"{path}:{line_no}: expected a JSON object")
        items.append(_item(record, line_no))
    return items


def _article_document(index: int, article: dict[str, Any]) -> tuple[Document, list[tuple[int, dict[str, Any]]]]:
    """The Markdown document of one article, and each paragraph's start offset."""
    title = str(article.get("title") or f"Article {index + 1}").replace("_", " ")
    text = f"# {title}\n"
    placed: list[tuple[int, dict[str, Any]]] = []
    for paragraph in article.get("paragraphs", []):
        text += "\n"
        placed.append((len(text), paragraph))
        text += str(paragraph["context"]) + "\n"
    doc_id = f"{index + 1:03d}-{''.join(c if c.isalnum() else '-' for c in title)[:60]}.md"
    return parse_document(doc_id, text.encode("utf-8"), title=title), placed


def load_squad(path: Path) -> tuple[list[Document], list[GoldItem]]:
    """Read a SQuAD v1.1 or v2.0 file into documents and gold items.

    Raises:
        CorpusError: If the file is not SQuAD JSON, or a gold answer is not where it says.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path}: not a SQuAD JSON file ({exc})") from exc
    return squad_documents(data)


def squad_documents(data: list[dict[str, Any]], *, first: int = 0) -> tuple[list[Document], list[GoldItem]]:
    """The documents and gold items of SQuAD articles; ``first`` numbers the first article's document id.

    Raises:
        CorpusError: If a gold answer is not where it says.
    """
    documents: list[Document] = []
    items: list[GoldItem] = []
    for index, article in enumerate(data, first):
        doc, placed = _article_document(index, article)
        documents.append(doc)
        for offset, paragraph in placed:
            context = str(paragraph["context"])
            span = (doc.id, offset, offset + len(context))
            for qa in paragraph.get("qas", []):
                items.append(_squad_item(doc, offset, span, qa))
    return documents, items


def _squad_item(doc: Document, offset: int, paragraph: tuple[str, int, int], qa: dict[str, Any]) -> GoldItem:
    answers = qa.get("answers", [])
    spans: list[tuple[str, int, int]] = []
    for answer in answers:
        start = offset + int(answer["answer_start"])
        end = start + len(answer["text"])
        if doc.text[start:end] != answer["text"]:
            raise CorpusError(f"question {qa.get('id')}: gold answer {answer['text']!r} is not at its offset")
        spans.append((doc.id, start, end))
    impossible = bool(qa.get("is_impossible", False)) or not answers
    return GoldItem(
        id=str(qa.get("id", "")),
        question=str(qa["question"]),
        answers=tuple(dict.fromkeys(str(a["text"]) for a in answers)),
        unanswerable=impossible,
        spans=tuple(spans),
        paragraph=None if impossible else paragraph,
    )
