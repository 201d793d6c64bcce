"""Anchors and source URLs: a citation points into its page (an HTML element's id, a Markdown heading)."""

from __future__ import annotations

from api_helpers import API_KEY

from qa.cite import anchor_at, source_url
from qa.ingest import parse_document
from qa.structure import heading_anchors, parse_blocks

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PAGE = """<html><body><section id="birds"><h1 id="top">Bird survey</h1>
<p>The survey began in spring.</p>
<h2 id="herons">Herons</h2><p>The heron colony has 58 nests on the river island.</p>
<table id="counts"><tr><th>Species</th><th>Nests</th></tr><tr id="row-egret"><td>Egret</td><td>12</td></tr></table>
</section></body></html>"""
NOTES = "# Field notes\n\n## Zebra census\n\nThe zebra census counted 4,213 zebras.\n\n## Zebra census\n\nA recount.\n"


def test_html_anchors_are_the_ids_before_each_block() -> None:
    doc = parse_document("survey.html", PAGE.encode())
    assert [name for _, name in doc.anchors] == ["birds", "top", "herons", "counts", "row-egret"]
    heron = doc.text.index("The heron colony")
    assert anchor_at(doc, heron) == "herons" and anchor_at(doc, 0) == "top"
    assert anchor_at(doc, doc.text.index("Egret")) == "row-egret"


def test_a_list_item_id_points_at_the_item_not_the_text_before_it() -> None:
    """An ``li`` starts a block of its own, like a heading or a row: its id is at the item's text."""
    doc = parse_document("notes.html", b"Loose text before the list<li id='first'>First item</li><li>Second</li>")
    assert [(doc.text[at : at + 10], name) for at, name in doc.anchors] == [("First item", "first")]
    assert anchor_at(doc, doc.text.index("Loose")) is None


def test_markdown_headings_get_github_anchors() -> None:
    text = "## Hello, World!\n\nx\n\n## Hello, World!\n\n### Café & más_2\n"
    assert [name for _, name in heading_anchors(text, parse_blocks(text, markdown=True))] == [
        "hello-world", "hello-world-1", "café--más_2",
    ]  # fmt: skip
    doc = parse_document("notes.md", NOTES.encode())
    assert anchor_at(doc, doc.text.index("A recount")) == "zebra-census-1"


def test_the_url_opens_the_source_at_the_anchor() -> None:
    doc = parse_document("survey.html", PAGE.encode(), metadata={"source_url": "https://example.org/survey#old"})
    assert source_url(doc, "herons") == "https://example.org/survey#herons"
    assert source_url(doc, "a b/c") == "https://example.org/survey#a%20b%2Fc"
    assert source_url(doc, None) == "https://example.org/survey#old"
    assert source_url(parse_document("notes.md", NOTES.encode()), "zebra-census") is None


def test_citations_carry_anchor_and_url_through_the_api(client) -> None:
    body = {"document_id": "survey.html", "text": PAGE, "metadata": {"source_url": "https://example.org/survey"}}
    assert client.post("/v1/documents", json=body, headers=AUTH).status_code == 201
    answer = client.post("/v1/ask", json={"question": "How many nests does the heron colony have?"}).json()
    heron = next(c for c in answer["citations"] if c["document_id"] == "survey.html" and "heron colony" in c["quote"])
    assert heron["anchor"] == "herons" and heron["url"] == "https://example.org/survey#herons"
    notes = {"document_id": "notes.md", "text": NOTES}
    assert client.post("/v1/documents", json=notes, headers=AUTH).status_code == 201
    answer = client.post("/v1/ask", json={"question": "How many zebras did the census count?"}).json()
    zebra = next(c for c in answer["citations"] if c["document_id"] == "notes.md")
    assert zebra["anchor"] == "zebra-census" and zebra["url"] is None  # no source_url: nowhere to open
