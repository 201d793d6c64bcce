"""Turn chosen answer units into citations, and check that each quote is verbatim."""

from __future__ import annotations

import bisect
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from qa.ingest import text_sha256
from qa.types import Citation, Document, Passage, Span


@lru_cache(maxsize=4096)
def document_version(text: str) -> str:
    """A document's version: the sha256 of its text as indexed (``text_sha256``), computed once per text.

    Every citation carries it, so a stored citation can be checked later (``qa.verify``).
    """
    return text_sha256(text)


def section_of(section_path: tuple[str, ...], title: str) -> str:
    """The section a citation names: the innermost heading above it, else the document's title."""
    return section_path[-1] if section_path else title


def cite(document: Document, passage: Passage, unit: Span, score: float) -> Citation:
    """A citation of ``document.text[unit.start:unit.end]``.

    Args:
        document: The passage's document.
        passage: The passage the unit belongs to (for its id and section path).
        unit: The quoted span.
        score: The quote's score, clipped into [0, 1].

    Raises:
        ValueError: If the span lies outside the passage: a quote must come from its passage.
    """
    if not passage.start <= unit.start < unit.end <= passage.end:
        raise ValueError(f"span [{unit.start}, {unit.end}) is outside passage [{passage.start}, {passage.end})")
    return Citation(
        quote=document.text[unit.start : unit.end],
        document_id=document.id,
        document_title=document.title,
        section=section_of(passage.section_path, document.title),
        section_path=passage.section_path,
        start=unit.start,
        end=unit.end,
        passage_id=passage.id,
        score=round(min(1.0, max(0.0, score)), 4),
        document_metadata=document.metadata,
        document_version=document_version(document.text),
        anchor=(anchor := anchor_at(document, unit.start)),
        url=source_url(document, anchor),
        **pages_of(document, unit),
    )


def pages_of(document: Document, unit: Span) -> dict[str, Any]:
    """The ``page``, ``pages``, ``page_start`` and ``page_end`` of a span of a PDF (nothing for other formats)."""
    if not document.pages:
        return {}
    starts = [start for _, start in document.pages]
    first = max(0, bisect.bisect_right(starts, unit.start) - 1)
    last = max(first, bisect.bisect_right(starts, unit.end - 1) - 1)
    return {
        "page": document.pages[first][0],
        "pages": tuple(number for number, _ in document.pages[first : last + 1]),
        "page_start": unit.start - starts[first],
        "page_end": unit.end - starts[last],
    }


def anchor_at(document: Document, offset: int) -> str | None:
    """The document's last anchor at or before ``offset`` (None before the first, or without any)."""
    at = bisect.bisect_right([start for start, _ in document.anchors], offset)
    return document.anchors[at - 1][1] if at else None


def source_url(document: Document, anchor: str | None) -> str | None:
    """The document's ``source_url`` (metadata), opened at ``anchor`` when there is one; None without a URL."""
    url = document.metadata.get("source_url")
    if not isinstance(url, str):
        return None
    return f"{url.split('#', 1)[0]}#{quote(anchor, safe='')}" if anchor else url


def is_verbatim(citation: Citation, document: Document) -> bool:
    """Whether the quote is exactly the document's text at the cited offsets."""
    return document.text[citation.start : citation.end] == citation.quote
