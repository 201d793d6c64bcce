"""Answers and search results as JSON-ready data: the output contract shared by the CLI and the API."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from qa.cite import section_of
from qa.metadata import metadata_record
from qa.types import Citation

if TYPE_CHECKING:  # keeps `qa --help` free of numpy and the engine
    from qa.engine import SearchResult
    from qa.types import Answer

CITATION_FIELDS = tuple(f.name for f in fields(Citation))


def citation_record(citation: Citation) -> dict[str, Any]:
    """A citation as JSON-ready data: every field of ``qa.types.Citation``, in order, tuples as lists."""
    values = {name: getattr(citation, name) for name in CITATION_FIELDS}
    record = {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}
    record["document_metadata"] = metadata_record(citation.document_metadata)
    return record


def answer_record(answer: Answer) -> dict[str, Any]:
    """The answer object of the output contract, as JSON-ready data."""
    return {
        "question": answer.question,
        "answerable": answer.answerable,
        "answer": answer.answer,
        "confidence": answer.confidence,
        "citations": [citation_record(c) for c in answer.citations],
        "took_ms": answer.took_ms,
        "reason": answer.reason or None,
        "answers": [
            {"answer": a.answer, "confidence": a.confidence, "citations": [citation_record(c) for c in a.citations]}
            for a in answer.answers
        ],
    }


def search_record(result: SearchResult) -> dict[str, Any]:
    """A search result as JSON-ready data."""
    passage = result.hit.passage
    return {
        "passage_id": passage.id,
        "document_id": passage.doc_id,
        "document_title": result.document.title,
        "section": section_of(passage.section_path, result.document.title),
        "section_path": list(passage.section_path),
        "text": passage.text,
        "start": passage.start,
        "end": passage.end,
        "score": round(result.hit.score, 6),
        "highlights": [list(span) for span in result.highlights],
        "document_metadata": metadata_record(result.document.metadata),
    }
