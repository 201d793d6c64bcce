"""Gold question sets: the project's JSON Lines format and SQuAD v1.1/v2 JSON.

JSON Lines (see docs/gold-format.md), one object per line::

    {"id": "g001", "question": "...", "answers": ["..."], "sections": ["..."], "unanswerable": false}

SQuAD files carry their own paragraphs: each article becomes one Markdown
document (its title as the heading, then its paragraphs in order, separated
by blank lines), and every gold answer is mapped to offsets in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import CorpusError
from qa.ingest import parse_document
from qa.jsontext import decode
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


def _strings(value: object, key: str, where: str) -> tuple[str, ...]:
    """A list of non-empty strings (``answers``, ``sections``) as a tuple.

    Raises:
        CorpusError: If it is not a list, or holds anything but non-empty strings.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CorpusError(f"{where}: {key} must be a list of non-empty strings")
    return tuple(value)


def _item(record: dict[str, Any], where: str, line: int) -> GoldItem:
    """One JSON Lines record as a gold item; ``where`` names it in errors ("gold.jsonl:3").

    Raises:
        CorpusError: If a field has the wrong type (a string of answers would count one letter a right answer,
            "false" would read as true), or the item cannot be scored.
    """
    ident, question = record.get("id", str(line)), record.get("question")
    if not isinstance(ident, (str, int)) or isinstance(ident, bool):
        raise CorpusError(f"{where}: id must be a string")
    if not isinstance(question, str) or not question.strip():
        raise CorpusError(f"{where}: question must be a non-empty string")
    unanswerable = record.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise CorpusError(f"{where}: unanswerable must be true or false")
    answers = _strings(record.get("answers", []), "answers", where)
    sections = _strings(record.get("sections", []), "sections", where)
    if not unanswerable and not answers:
        # Such an item can never be answered right: it would only lower every figure it is counted in.
        raise CorpusError(f"{where}: an answerable question needs at least one answer (or unanswerable: true)")
    if unanswerable and answers:
        raise CorpusError(f"{where}: an unanswerable question has no answers")
    return GoldItem(str(ident), question, answers, sections, unanswerable)


def _read_text(path: Path) -> str:
    """A gold file's text (UTF-8, a byte-order mark allowed, as in corpus files).

    Raises:
        CorpusError: If it cannot be read or is not UTF-8.
    """
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 (byte {exc.start})") from exc


def _json(text: str, where: str) -> Any:
    try:
        return decode(text, "the text")
    except ValueError as exc:
        raise CorpusError(f"{where}: {exc}") from None


def load_jsonl(path: Path) -> list[GoldItem]:
    """Read a gold set in the project's JSON Lines format.

    Raises:
        CorpusError: On a line that is not a JSON object with a question and fields of the documented types,
            or an id used twice.
    """
    items: list[GoldItem] = []
    lines: dict[str, int] = {}
    for line_no, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        record = _json(line, where)
        if not isinstance(record, dict):
            raise CorpusError(f"{where}: expected a JSON object")
        item = _item(record, where, line_no)
        if item.id in lines:
            raise CorpusError(f"{where}: id {item.id!r} is used on line {lines[item.id]} too")
        lines[item.id] = line_no
        items.append(item)
    return items


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise CorpusError(f"{what} must be a list")
    return value


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorpusError(f"{what} must be an object")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise CorpusError(f"{what} must be a string")
    return value


def _article_document(index: int, article: dict[str, Any]) -> tuple[Document, list[tuple[int, dict[str, Any]]]]:
    """The Markdown document of one article, and each paragraph's start offset.

    Raises:
        CorpusError: If the article's paragraphs are not objects with a text ``context``.
    """
    title = str(article.get("title") or f"Article {index + 1}").replace("_", " ")
    text = f"# {title}\n"
    placed: list[tuple[int, dict[str, Any]]] = []
    for number, paragraph in enumerate(_list(article.get("paragraphs", []), f"article {index + 1}: paragraphs")):
        where = f"article {index + 1}, paragraph {number + 1}"
        paragraph = _object(paragraph, where)
        context = _text(paragraph.get("context"), f"{where}: context")
        text += "\n"
        placed.append((len(text), paragraph))
        text += context + "\n"
    doc_id = f"{index + 1:03d}-{''.join(c if c.isalnum() else '-' for c in title)[:60]}.md"
    return parse_document(doc_id, text.encode("utf-8"), title=title), placed


def load_squad(path: Path) -> tuple[list[Document], list[GoldItem]]:
    """Read a SQuAD v1.1 or v2.0 file into documents and gold items.

    Raises:
        CorpusError: If the file is not SQuAD JSON, or a gold answer is not where it says.
    """
    record = _json(_read_text(path), str(path))
    try:
        data = _list(_object(record, "the file")["data"], "data")
        return squad_documents(data)
    except KeyError:
        raise CorpusError(f"{path}: not a SQuAD JSON file (no data)") from None
    except CorpusError as exc:
        raise CorpusError(f"{path}: not a SQuAD JSON file ({exc})") from exc


def squad_documents(data: list[dict[str, Any]], *, first: int = 0) -> tuple[list[Document], list[GoldItem]]:
    """The documents and gold items of SQuAD articles; ``first`` numbers the first article's document id.

    Raises:
        CorpusError: If an article, paragraph, question or answer has another shape than SQuAD's, or a gold
            answer is not where it says.
    """
    documents: list[Document] = []
    items: list[GoldItem] = []
    for index, article in enumerate(data, first):
        doc, placed = _article_document(index, _object(article, f"article {index + 1}"))
        documents.append(doc)
        for offset, paragraph in placed:
            context = str(paragraph["context"])
            span = (doc.id, offset, offset + len(context))
            for qa in _list(paragraph.get("qas", []), f"article {index + 1}: qas"):
                items.append(_squad_item(doc, offset, span, _object(qa, f"article {index + 1}: a question")))
    return documents, items


def _squad_item(doc: Document, offset: int, paragraph: tuple[str, int, int], qa: dict[str, Any]) -> GoldItem:
    where = f"question {qa.get('id')!r}"
    question = _text(qa.get("question"), f"{where}: question")
    answers = [_object(a, f"{where}: an answer") for a in _list(qa.get("answers", []), f"{where}: answers")]
    context_end = paragraph[2]
    spans: list[tuple[str, int, int]] = []
    for answer in answers:
        text, at = _text(answer.get("text"), f"{where}: an answer's text"), answer.get("answer_start")
        if not isinstance(at, int) or isinstance(at, bool) or at < 0:
            raise CorpusError(f"{where}: answer_start must be a whole number, 0 or more")
        start = offset + at
        end = start + len(text)
        if end > context_end or doc.text[start:end] != text:
            raise CorpusError(f"{where}: gold answer {text!r} is not at its offset")
        spans.append((doc.id, start, end))
    flagged = qa.get("is_impossible", False)
    if not isinstance(flagged, bool):
        raise CorpusError(f"{where}: is_impossible must be true or false")
    impossible = flagged or not answers
    return GoldItem(
        id=str(qa.get("id", "")),
        question=question,
        answers=tuple(dict.fromkeys(str(a["text"]) for a in answers)),
        unanswerable=impossible,
        spans=tuple(spans),
        paragraph=None if impossible else paragraph,
    )
