"""Turn chosen answer units into citations, and check that each quote is verbatim."""

from __future__ import annotations

from functools import lru_cache

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
    )


def is_verbatim(citation: Citation, document: Document) -> bool:
    """Whether the quote is exactly the document's text at the cited offsets."""
    return document.text[citation.start : citation.end] == citation.quote
