"""Check stored citations against the documents as they are now: current, moved, or gone.

A citation names a document, a quote and its offsets (``qa.types.Citation``), and, since versions,
the ``document_version`` it was made from: the sha256 of the document's text as indexed. Documents
change (replaced, edited, deleted), so a citation kept from long ago may no longer point at its quote.
``verify`` says, for each citation, whether the quote is still at its offsets (``current``), is in the
document at other offsets (``moved``, with the new ones: the occurrence nearest the old start), or is
not in the document any more, or the document is gone (``gone``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from qa.cite import document_version
from qa.types import Document

Status = Literal["current", "moved", "gone"]
# Citations one request may verify: 10,000 take well under a second (benchmarks/RESULTS.md).
MAX_CITATIONS = 10_000


@dataclass(frozen=True, slots=True)
class Cited:
    """What a stored citation says: where its quote was."""

    document_id: str
    quote: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where a citation's quote is now.

    Attributes:
        status: ``current``, ``moved`` or ``gone``.
        start: The quote's offsets in the current version (None when gone).
        end: See ``start``.
        document_version: The current version of the document (None when the document is gone).
    """

    status: Status
    start: int | None
    end: int | None
    document_version: str | None


def nearest(text: str, quote: str, near: int) -> int | None:
    """The start of the occurrence of ``quote`` in ``text`` nearest ``near`` (the earlier on a tie), or None.

    It looks from ``near`` outwards, one search each way, so a quote that moved a little is found
    without reading the whole document.
    """
    if not quote:
        return None
    near = min(max(near, 0), len(text))
    before = text.rfind(quote, 0, near + len(quote) - 1) if near else -1
    # Past an occurrence found before, only a nearer one after matters: the search forwards stops there.
    stop = near + (near - before) + len(quote) if before != -1 else len(text)
    after = text.find(quote, near, stop)
    found = [at for at in (before, after) if at != -1]
    return min(found, key=lambda at: (abs(at - near), at)) if found else None


def verify_one(cited: Cited, document: Document | None) -> Verdict:
    """Where ``cited``'s quote is in ``document`` (None: the document is not in the index)."""
    if document is None:
        return Verdict("gone", None, None, None)
    version = document_version(document.text)
    if 0 <= cited.start < cited.end <= len(document.text) and document.text[cited.start : cited.end] == cited.quote:
        return Verdict("current", cited.start, cited.end, version)
    start = nearest(document.text, cited.quote, cited.start)
    if start is None:
        return Verdict("gone", None, None, version)
    return Verdict("moved", start, start + len(cited.quote), version)


def verify(citations: Iterable[Cited], find: Callable[[str], Document | None]) -> list[Verdict]:
    """Each citation's verdict, in order; ``find`` gives a document by id (None when there is none)."""
    return [verify_one(cited, find(cited.document_id)) for cited in citations]
