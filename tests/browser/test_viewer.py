"""The source viewer (``/view/{document_id}?start=&end=``) in headless Chromium against a real ``qa serve``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

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
    ]
    for url, status, text in cases:
        response = service.get(url.removeprefix(service.url))
        assert (response.status_code, response.headers["content-type"]) == (status, "text/html; charset=utf-8")
        assert text in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
    # A start that is not a number is the API's validation error, as problem+json.
    response = service.get(f"/view/{document_id}", start="x", end=4)
    assert (response.status_code, response.headers["content-type"]) == (422, "application/problem+json")
