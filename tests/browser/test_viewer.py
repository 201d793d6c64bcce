"""The source viewer (``/view/{document_id}?start=&end=``) in headless Chromium against a real ``qa serve``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

# What the viewer shows, read in the page.
SHOWN = """() => ({
  cited: document.getElementById("cited")?.textContent ?? null,
  marks: [...document.querySelectorAll("mark.cited")].map((m) => m.textContent),
  text: document.querySelector("article.doc").textContent,
  crumbs: [...document.querySelectorAll(".crumbs li")].map((li) => li.textContent),
  headings: [...document.querySelectorAll("article :is(h1, h2, h3)")].map((h) => `${h.tagName} ${h.textContent}`),
  inView: (() => { const r = document.getElementById("cited")?.getBoundingClientRect();
                   return !!r && r.top >= 0 && r.bottom <= innerHeight; })(),
})"""


def view_url(service: Any, document_id: str, start: int | None = None, end: int | None = None) -> str:
    url = service.url + "/view/" + "/".join(quote(part, safe="") for part in document_id.split("/"))
    return url if start is None else f"{url}?start={start}&end={end}"


@pytest.mark.parametrize(
    "question",
    [
        "How many agencies participate in Secure Communities?",  # a sentence in a paragraph
        "How many fusion centers operate nationwide?",  # a table row
        "What do state laws control about data sharing?",  # a list item
    ],
)
def test_the_viewer_highlights_exactly_the_cited_range(page: Page, service: Any, question: str) -> None:
    answer = service.ask(question)
    document = service.get(f"/v1/documents/{answer['citations'][0]['document_id']}").json()
    for citation in answer["citations"][:2]:
        # Without #cited in the URL: the page scrolls the citation into view by itself.
        page.goto(view_url(service, citation["document_id"], citation["start"], citation["end"]))
        shown = page.evaluate(SHOWN)
        assert shown["cited"] == document["text"][citation["start"] : citation["end"]] == citation["quote"]
        assert shown["marks"] == [citation["quote"]]
        assert shown["text"] == document["text"]  # every character, once, in order
        assert shown["crumbs"] == (citation["section_path"] or [document["title"]])
        assert shown["inView"]


def test_a_range_across_blocks_is_highlighted_piece_by_piece(page: Page, service: Any) -> None:
    document = service.get("/v1/documents/immigration-data-sharing.txt").json()
    text = document["text"]
    start, end = text.index("Overview") + 4, text.index("Since 9/11") + 20  # heading into paragraph
    page.goto(view_url(service, document["document_id"], start, end) + "#cited")
    shown = page.evaluate(SHOWN)
    assert "".join(shown["marks"]) == text[start:end] and len(shown["marks"]) == 3
    assert shown["cited"] == "view" and shown["crumbs"] == ["Overview"]
    assert shown["headings"][:2] == ["H1 " + document["title"], "H2 Overview"]


def test_a_plain_text_document_is_shown_as_text(page: Page, service: Any, payload: dict[str, str]) -> None:
    start = payload["text"].index(payload["quote"])
    page.goto(view_url(service, payload["document_id"], start, start + len(payload["quote"])))
    shown = page.evaluate(SHOWN)
    assert shown["text"] == payload["text"] and shown["cited"] == payload["quote"]
    assert page.title() == f"{payload['title']} · source"
    assert page.evaluate("['__xss', '__xss2', '__xss3'].filter((name) => name in window)") == []
    assert page.locator("main :is(img, script, svg)").count() == 0


def test_the_viewer_answers_bad_requests_with_pages(service: Any) -> None:
    document_id = "immigration-data-sharing.txt"
    length = len(service.get(f"/v1/documents/{document_id}").json()["text"])
    cases = [
        (view_url(service, "no/such <doc>.txt"), 404, "There is no document with this id here."),
        (view_url(service, document_id, 5, length + 1), 400, f"0 ≤ start &lt; end ≤ {length}"),
        (view_url(service, document_id, 9, 9), 400, "got 9–9"),
        (view_url(service, document_id) + "?start=3", 400, "got 3–None"),
        (view_url(service, document_id, -1, 4), 400, "got -1–4"),  # a range's every rule gets the same page
    ]
    for url, status, text in cases:
        response = service.get(url.removeprefix(service.url))
        assert (response.status_code, response.headers["content-type"]) == (status, "text/html; charset=utf-8")
        assert text in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
    # A start that is not a number is the API's validation error, as problem+json.
    response = service.get(f"/view/{document_id}", start="x", end=4)
    assert (response.status_code, response.headers["content-type"]) == (422, "application/problem+json")


def test_a_table_is_shown_as_a_table(page: Page, service: Any) -> None:
    """Pipe rows are rows of cells: no pipes and no |---| rule in what a reader sees; a cited row is one mark."""
    answer = service.ask("How many fusion centers operate nationwide?")
    citation = next(c for c in answer["citations"] if c["quote"].startswith("Number of Fusion Centers"))
    page.goto(view_url(service, citation["document_id"], citation["start"], citation["end"]))
    shown = page.evaluate(SHOWN)
    assert shown["marks"] == [citation["quote"]]
    cells = page.locator("#cited .td").all_inner_texts()
    assert [cell.strip() for cell in cells] == [
        "Number of Fusion Centers",
        "~80",
        "Operating nationwide including New York State",
    ]
    seen = page.locator("article.doc .table").first.inner_text()
    assert "|" not in seen and "---" not in seen
    headers = page.locator("article.doc .table .th .td").all_inner_texts()
    assert headers and all(h.strip() for h in headers)
    box = page.locator("#cited").bounding_box()
    assert box is not None and box["height"] > 0  # a real box: the page scrolls to it


def test_a_pdf_shows_its_pages_and_the_widget_names_the_page(page: Page, service: Any) -> None:
    """Page markers in the viewer (``#page-N`` targets, no text of their own), the cited page named above the
    text, and "p. N" beside a PDF citation in the widget."""
    from test_pdf_pages import report

    assert service.upload("harbour.pdf", report()).status_code == 201
    try:
        answer = service.get("/v1/ask", q="When was the lighthouse painted red?", k=3).json()
        citation = next(c for c in answer["citations"] if c["document_id"] == "harbour.pdf")
        assert citation["page"] == 4 and citation["pages"] == [4]
        page.goto(view_url(service, "harbour.pdf", citation["start"], citation["end"]))
        shown = page.evaluate(SHOWN)
        assert shown["cited"] == citation["quote"]
        assert shown["text"] == service.get("/v1/documents/harbour.pdf").json()["text"]  # markers add no text
        assert page.locator(".page-marker").count() == 4 and page.locator("#page-3").count() == 1
        assert "on page 4" in page.locator(".range").inner_text()
        page.goto(service.url + "/")
        page.locator("qa-search input").press_sequentially("When was the lighthouse painted red?", delay=15)
        expect(page.locator("qa-search .page").first).to_have_text("p. 4", timeout=15_000)
    finally:  # the service is shared: leave its documents as they were
        service.delete("/v1/documents/harbour.pdf")
