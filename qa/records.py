"""Answers and search results as JSON-ready data: the output contract shared by the CLI and the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keeps `qa --help` free of numpy and the engine
    from qa.engine import SearchResult
    from qa.types import Answer


def answer_record(answer: Answer) -> dict[str, Any]:
    """The answer object of the output contract, as JSON-ready data."""
    return {
        "question": answer.question,
        "answerable": answer.answerable,
        "answer": answer.answer,
        "confidence": answer.confidence,
        "citations": [
            {
                "quote": c.quote,
                "document_id": c.document_id,
                "document_title": c.document_title,
                "section": c.section,
                "section_path": list(c.section_path),
                "start": c.start,
                "end": c.end,
                "passage_id": c.passage_id,
                "score": c.score,
            }
            for c in answer.citations
        ],
        "took_ms": answer.took_ms,
    }


def search_record(result: SearchResult) -> dict[str, Any]:
    """A search result as JSON-ready data."""
    passage = result.hit.passage
    return {
        "passage_id": passage.id,
        "document_id": passage.doc_id,
        "document_title": result.document.title,
        "section": passage.section_path[-1] if passage.section_path else result.document.title,
        "section_path": list(passage.section_path),
        "text": passage.text,
        "start": passage.start,
        "end": passage.end,
        "score": round(result.hit.score, 6),
        "highlights": [list(span) for span in result.highlights],
    }
