"""Values that flow through the pipeline.

Every offset is a Unicode code-point index into ``Document.text`` and every
span is half-open ``[start, end)``, so ``document.text[start:end] == quote``
holds for every passage, sentence and citation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from qa.metadata import MetaValue, metadata_from_record, metadata_record

BlockKind = Literal["heading", "paragraph", "list_item", "table_header", "table_row"]


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of a document found by a parser.

    Attributes:
        kind: What the block is.
        start: Offset of the first character in ``Document.text``.
        end: Offset one past the last character.
        level: Heading depth (1 = top level); 0 for other blocks.
    """

    kind: BlockKind
    start: int
    end: int
    level: int = 0


@dataclass(frozen=True, slots=True)
class Document:
    """A source document as indexed.

    Attributes:
        id: Path relative to the corpus root, with POSIX separators.
        title: The first heading, or the file name.
        text: Exactly the text that every offset refers to.
        blocks: Headings, paragraphs, list items and table rows, in order.
        format: The parser that produced it (``txt``, ``md``, ``html``, ``pdf``).
        metadata: What the user set (``qa.metadata``: tags, date, source URL, ...), in canonical form.
        anchors: (offset, anchor) of the places a link can point to, in order: an HTML element's id, a
            Markdown heading's GitHub-style anchor; none for plain text and PDF.
        pages: (1-based page number, offset where its text starts) of each PDF page with text, in order;
            none for other formats.
    """

    id: str
    title: str
    text: str
    blocks: tuple[Block, ...] = ()
    format: str = "txt"
    metadata: Mapping[str, MetaValue] = field(default_factory=dict)
    anchors: tuple[tuple[int, str], ...] = ()
    pages: tuple[tuple[int, int], ...] = ()


def document_record(doc: Document) -> dict[str, Any]:
    """A document as JSON-ready data: how the index stores it and a parsing process returns it."""
    record: dict[str, Any] = {
        "id": doc.id,
        "title": doc.title,
        "format": doc.format,
        "text": doc.text,
        "blocks": [[b.kind, b.start, b.end, b.level] for b in doc.blocks],
    }
    if doc.metadata:  # absent when unset: indexes without metadata read and write as before
        record["metadata"] = metadata_record(doc.metadata)
    if doc.anchors:
        record["anchors"] = [list(anchor) for anchor in doc.anchors]
    if doc.pages:
        record["pages"] = [list(page) for page in doc.pages]
    return record


def document_from_record(record: dict[str, Any]) -> Document:
    """The document that :func:`document_record` wrote."""
    blocks = tuple(Block(kind, start, end, level) for kind, start, end, level in record["blocks"])
    metadata = metadata_from_record(record.get("metadata") or {})
    anchors = tuple((int(offset), str(name)) for offset, name in record.get("anchors") or ())
    pages = tuple((int(number), int(offset)) for number, offset in record.get("pages") or ())
    fmt = record["format"]
    return Document(record["id"], record["title"], record["text"], blocks, fmt, metadata, anchors, pages)


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence, list item or table row inside a passage: the unit of an answer."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrievable chunk of a document.

    Attributes:
        id: Content address: stable across rebuilds while the text is unchanged.
        doc_id: The document it comes from.
        section_path: Headings above it, outermost first (the title excluded).
        start: Offset of the passage in the document text.
        end: End offset (exclusive).
        text: ``document.text[start:end]``.
        kind: ``prose``, ``list`` or ``table_row``.
        context: Extra text used for retrieval only (the table header of a row).
        units: Answer units (sentences, list items, a table row) inside the passage.
    """

    id: str
    doc_id: str
    section_path: tuple[str, ...]
    start: int
    end: int
    text: str
    kind: Literal["prose", "list", "table_row"] = "prose"
    context: str = ""
    units: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage returned by retrieval, with its fused score and 0-based rank."""

    passage: Passage
    score: float
    rank: int
    dense_score: float = 0.0
    lexical_score: float = 0.0


@dataclass(frozen=True, slots=True)
class Citation:
    """A verbatim quote from a document, with where it comes from.

    ``document_version`` is the sha256 of the document's text as indexed when the citation was made:
    ``qa.verify`` checks a stored citation against the document as it is later. ``anchor`` is the nearest
    anchor at or before the quote (``Document.anchors``); ``url`` opens the document's ``source_url``
    (metadata) there, or at its top without an anchor; both are None when there is nothing to point to.
    For a PDF, ``page`` is the 1-based page the quote starts on, ``pages`` every page it spans (two or more
    when it crosses a page break), ``page_start`` its start within the first page's text and ``page_end``
    its end within the last page's; all None for other formats.
    """

    quote: str
    document_id: str
    document_title: str
    section: str
    section_path: tuple[str, ...]
    start: int
    end: int
    passage_id: str
    score: float
    document_metadata: Mapping[str, MetaValue] = field(default_factory=dict)
    document_version: str = ""
    anchor: str | None = None
    url: str | None = None
    page: int | None = None
    pages: tuple[int, ...] | None = None
    page_start: int | None = None
    page_end: int | None = None


# What makes several answers to one question distinct (``answers=n``): no answer's quote lies within the
# first's span or repeats an earlier one ("quotes", the default), or each comes from a passage of its own.
Distinct = Literal["quotes", "passages"]
DISTINCT: tuple[Distinct, ...] = get_args(Distinct)


@dataclass(frozen=True, slots=True)
class Alternative:
    """One of several answers to a question: a verbatim quote with its confidence and its citation."""

    answer: str
    confidence: float
    citations: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """The result of a question: a verbatim answer, or an abstention.

    ``citations[0]`` is the answer's own source when ``answerable`` is true. ``answers`` holds the answers
    asked for with ``answers=n`` (the first is ``answer`` itself), distinct as ``Distinct`` says; it is
    empty for a refusal.
    ``reason`` says why a question was refused ("these documents never mention
    “Texas”", "no passage mentions the “salary” asked about"); it is empty for an
    answer (null in the JSON contract).
    """

    question: str
    answerable: bool
    answer: str | None
    confidence: float
    citations: tuple[Citation, ...] = field(default_factory=tuple)
    took_ms: float = 0.0
    reason: str = ""
    answers: tuple[Alternative, ...] = ()
