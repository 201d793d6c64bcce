"""Where an expected quote lies in a document, found by its text rather than typed-in offsets; and the
questions over the default corpus that tests compare answers on.

Tests that pin what the model answers write the expected sentence out in full and take its
offsets from here, so that a failure names the sentence that was expected instead of two numbers.
"""

from __future__ import annotations

# Questions over the default corpus whose answers many tests compare (four answerable, one not).
CORPUS_QUESTIONS = [
    "How many agencies participate in Secure Communities?",
    "How many fusion centers are there?",
    "What does 287(g) allow?",
    "Which data do fusion centers share?",
    "What is the capital of Australia?",
]


def span_of(text: str, quote: str) -> tuple[int, int]:
    """The (start, end) code-point offsets of ``quote`` in ``text``, which must hold it exactly once.

    A quote found twice would make "its place" ambiguous, and one not found at all means the
    corpus changed under the test: both fail here, naming the quote.
    """
    found = text.count(quote)
    assert found == 1, f"expected the document to hold {quote!r} exactly once, found it {found} times"
    start = text.index(quote)
    return start, start + len(quote)
