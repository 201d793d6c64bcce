"""The ``<qa-search>`` widget in headless Chromium against a real ``qa serve``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect
from widget_helpers import ANSWER, ANSWERABLE, OTHER, UNANSWERABLE, state, wait_for_status

pytestmark = pytest.mark.browser


def test_answer_is_the_verbatim_quote_with_its_section_title_and_highlight(
    page: Page, service: Any, artifacts: Path
) -> None:
    asks: list[str] = []
    page.on("request", lambda r: asks.append(r.url) if "/v1/ask" in r.url else None)
    page.goto(service.url + "/")
    page.locator("qa-search input").press_sequentially(ANSWERABLE, delay=15)
    shown = wait_for_status(page, r"^3 results$")

    expected = service.ask(ANSWERABLE)
    first = expected["citations"][0]
    link = urlsplit(shown["links"][0])
    start, end = int(parse_qs(link.query)["start"][0]), int(parse_qs(link.query)["end"][0])
    document = service.get(f"/v1/documents/{first['document_id']}").json()
    assert shown["answer"] == [ANSWER] == [document["text"][start:end]]
    assert (start, end) == (first["start"], first["end"])
    assert unquote(link.path) == f"/view/{first['document_id']}" and link.fragment == "cited"
    assert shown["crumbs"][0] == "Notable Data Sharing Programs and Agreements › Secure Communities"
    assert shown["titles"][0] == document["title"]
    assert shown["confidence"] == [f"{round(expected['confidence'] * 100)}% confidence"]
    assert shown["labels"] == ["Answer", "Also cited"]
    assert len(shown["quotes"]) == 3
    # The question's words in the quote are highlighted, and nothing else is.
    assert shown["marks"] == ["agencies participate"]
    # One request for the whole typing burst: the debounce held back the others.
    assert len(asks) == 1 and parse_qs(urlsplit(asks[0]).query) == {"q": [ANSWERABLE], "k": ["3"]}
    page.screenshot(path=str(artifacts / "demo-answer.png"))


def test_keyboard_and_aria(page: Page, service: Any) -> None:
    page.goto(service.url + "/")
    widget = page.locator("qa-search")
    before = state(page)
    assert (before["expanded"], before["listHidden"], before["focused"]) == ("false", True, False)
    roles = widget.evaluate(
        """(el) => {
          const r = el.shadowRoot, input = r.querySelector("input");
          const list = r.getElementById(input.getAttribute("aria-controls"));
          const status = r.getElementById(input.getAttribute("aria-describedby"));
          return [input.getAttribute("role"), input.getAttribute("aria-label"), list.getAttribute("role"),
                  status.getAttribute("role"), status.getAttribute("aria-live")];
        }"""
    )
    assert roles == ["combobox", "Ask a question about these documents", "listbox", "status", "polite"]

    # "/" from a link on the page focuses the box; typing "/" inside it is just a character.
    page.locator(".docs a").first.focus()
    page.keyboard.press("/")
    assert state(page)["focused"]
    page.keyboard.type("a/b")
    assert state(page)["value"] == "a/b"
    page.keyboard.press("Escape")  # clears, keeps focus
    assert state(page)["value"] == "" and state(page)["focused"]
    page.keyboard.press("Escape")  # empty: focus goes back where it came from
    assert page.evaluate("document.activeElement.closest('.docs') !== null")

    page.keyboard.press("Control+k")
    assert state(page)["focused"]
    page.keyboard.type(ANSWERABLE)
    page.keyboard.press("Enter")  # asks at once
    s = wait_for_status(page, r"^3 results$")
    assert s["expanded"] == "true" and s["activedescendant"] is None
    ids = s["optionIds"]
    page.keyboard.press("ArrowDown")
    assert (state(page)["activedescendant"], state(page)["selected"]) == (ids[0], ["true", "false", "false"])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert state(page)["activedescendant"] == ids[2]
    page.keyboard.press("ArrowDown")  # wraps
    assert state(page)["activedescendant"] == ids[0]
    page.keyboard.press("ArrowUp")
    assert state(page)["activedescendant"] == ids[2]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert state(page)["focused"] and state(page)["activedescendant"] == ids[0]

    with page.context.expect_page() as opened:
        page.keyboard.press("Enter")
    viewer = opened.value
    viewer.wait_for_load_state()
    assert viewer.url == s["links"][0]
    expect(viewer.locator("mark#cited")).to_have_text(ANSWER)

    page.bring_to_front()
    page.keyboard.press("Escape")
    after = state(page)
    assert (after["value"], after["expanded"], after["listHidden"], after["status"]) == ("", "false", True, "")
    assert after["focused"] and after["activedescendant"] is None

    # Focus is visible: the box gets a ring while the input has focus.
    ring = widget.evaluate("(el) => getComputedStyle(el.shadowRoot.querySelector('.box')).boxShadow")
    assert ring != "none"


def test_editing_the_question_drops_the_highlight_so_enter_asks_it(page: Page, service: Any) -> None:
    """Regression: after ↓ and an edit, Enter opened the old question's citation instead of asking."""
    opened: list[Page] = []
    page.context.on("page", lambda new: opened.append(new))
    page.goto(service.url + "/")
    box = page.locator("qa-search input")
    box.fill(ANSWERABLE)
    box.press("Enter")
    wait_for_status(page, r"^3 results$")
    box.press("ArrowDown")
    assert state(page)["selected"] == ["true", "false", "false"]
    box.press("End")
    box.press("Backspace")  # one character is an edit too
    edited = state(page)
    assert (edited["activedescendant"], edited["selected"]) == (None, ["false", "false", "false"])
    box.fill(OTHER)
    with page.expect_request(re.compile(r"/v1/ask\?q=How\+many\+fusion")):
        box.press("Enter")
    fusion = service.ask(OTHER)["citations"][0]["quote"]
    expect(page.locator("qa-search .answer .quote")).to_have_text(fusion, timeout=15_000)
    assert opened == []


def test_focus_is_visible_in_forced_colors(new_context: Any, service: Any, artifacts: Path) -> None:
    """Regression: High Contrast mode drops the box's box-shadow ring and recolours its border; an outline stays."""
    page = new_context(forced_colors="active").new_page()
    page.goto(service.url + "/")
    widget = page.locator("qa-search")
    outline = """(el) => { const s = getComputedStyle(el.shadowRoot.querySelector(".box"));
                           return [s.outlineStyle, s.outlineWidth]; }"""
    assert widget.evaluate(outline)[0] == "none"
    widget.locator("input").focus()
    assert widget.evaluate(outline) == ["solid", "2px"]
    page.screenshot(
        path=str(artifacts / "demo-forced-colors-focus.png"), clip={"x": 0, "y": 0, "width": 1000, "height": 240}
    )


def test_unanswerable_question_shows_no_answer_and_the_related_passages(page: Page, service: Any) -> None:
    expected = service.ask(UNANSWERABLE)
    assert expected["answerable"] is False
    page.goto(service.url + "/")
    page.locator("qa-search input").fill(UNANSWERABLE)
    s = wait_for_status(page, r"^No answer")
    assert s["status"] == "No answer in these documents · 3 related passages"
    assert s["labels"] == ["Related passages"] and s["answer"] == [] and s["confidence"] == []
    assert s["quotes"] == [c["quote"] for c in expected["citations"]]


def test_an_older_response_never_replaces_a_newer_one(page: Page, service: Any) -> None:
    """The first question's request is held until the second's answer is shown, then let through."""
    held: list[Route] = []
    failed: list[tuple[str, str | None]] = []

    def hold_the_first(route: Route) -> None:
        if not held and "fusion" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/ask?*", hold_the_first)
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    page.goto(service.url + "/")
    page.locator("qa-search").evaluate(
        """(el) => {
          window.__seen = [];
          new MutationObserver(() => {
            for (const q of el.shadowRoot.querySelectorAll(".quote")) window.__seen.push(q.textContent);
          }).observe(el.shadowRoot, { childList: true, subtree: true });
        }"""
    )
    box = page.locator("qa-search input")
    with page.expect_request(re.compile(r"/v1/ask\?q=How\+many\+fusion")):
        box.fill(OTHER)
    expect(page.locator("qa-search [role=status]")).to_have_text("Searching…")
    box.fill(ANSWERABLE)
    s = wait_for_status(page, r"^3 results$")
    assert s["answer"] == [ANSWER]

    held[0].continue_()  # the slow answer arrives now, too late
    page.wait_for_timeout(500)
    later = state(page)
    assert later["answer"] == [ANSWER] and later["status"] == "3 results"
    fusion = service.ask(OTHER)["citations"][0]["quote"]
    assert fusion not in page.evaluate("window.__seen")
    # The widget cancelled the first request when the second question was asked.
    assert [(unquote(url), failure) for url, failure in failed] == [
        (f"{service.url}/v1/ask?q={OTHER.replace(' ', '+')}&k=3", "net::ERR_ABORTED")
    ]


def test_embedded_on_an_allowed_origin(new_context: Any, service: Any) -> None:
    """A host page with its own strict CSP and hostile styles: the widget works and looks the same."""
    api = service.url
    service.allowed.html = f"""<!doctype html><html><head>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src {api}; connect-src {api}">
<title>Host</title></head><body>
<h1 id="host">A host page</h1>
<blockquote class="quote">the host's own quote</blockquote>
<qa-search endpoint="{api}" placeholder="Ask the briefing…" top-k="2"></qa-search>
<script src="{api}/widget.js" defer></script>
</body></html>""".encode()
    page = new_context().new_page()
    page.goto(service.allowed.origin + "/")
    # Hostile host styles, added the only way the host's CSP allows (CSSOM, not inline CSS).
    page.evaluate(
        """() => {
          const sheet = new CSSStyleSheet();
          sheet.replaceSync("input { font-size: 40px !important; color: red } mark { background: red }" +
                            " .quote { display: none } qa-search { --qa-accent: rgb(200, 0, 0) }");
          document.adoptedStyleSheets = [sheet];
        }"""
    )
    page.locator("qa-search input").fill(ANSWERABLE)
    s = wait_for_status(page, r"^2 results$")
    assert s["answer"] == [ANSWER]
    assert all(link.startswith(api + "/view/") for link in s["links"])
    style = page.locator("qa-search").evaluate(
        """(el) => {
          const r = el.shadowRoot, css = (sel, prop) => getComputedStyle(r.querySelector(sel))[prop];
          return [css("input", "fontSize"), css("mark", "backgroundColor"), css(".quote", "display"),
                  css(".box", "borderTopColor"), css(".box", "borderTopLeftRadius"),
                  getComputedStyle(document.querySelector("blockquote")).marginLeft];
        }"""
    )
    # Host rules stop at the shadow root; the custom property is the way in; the widget's rules stay inside.
    assert style == ["16px", "rgb(255, 229, 138)", "block", "rgb(200, 0, 0)", "10px", "40px"]


def test_a_refused_origin_shows_an_error_and_the_host_page_keeps_working(
    new_context: Any, service: Any, problems: Any
) -> None:
    api = service.url
    service.refused.html = f"""<!doctype html><html><body>
<button id="count" onclick="this.textContent = Number(this.textContent) + 1">0</button>
<qa-search endpoint="{api}"></qa-search>
<script src="{api}/widget.js" defer></script>
</body></html>""".encode()
    page = new_context().new_page()
    page.goto(service.refused.origin + "/")
    page.locator("qa-search input").fill(ANSWERABLE)
    s = wait_for_status(page, r"^Could not reach")
    assert s["status"] == "Could not reach the search service. Check the connection and try again."
    assert s["retry"] == ["Try again", False]
    assert "error" in s["statusClass"] and s["listHidden"] and s["expanded"] == "false"
    assert any("CORS policy" in m for m in problems.console_errors)  # the browser's reason, for the host's developer
    page.locator("#count").click()
    expect(page.locator("#count")).to_have_text("1")


def test_server_strings_are_shown_as_text_never_run(page: Page, service: Any, payload: dict) -> None:
    page.goto(service.url + "/")
    page.locator("qa-search input").fill("Which markers does the pelican inventory list?")
    s = wait_for_status(page, r"results?$")
    assert s["answer"] == [payload["quote"]]
    assert "<img src=x onerror=window.__xss=1>" in s["answer"][0]
    assert "<script>window.__xss2=1</script>" in s["answer"][0]
    assert s["titles"][0] == payload["title"]
    expect(page.locator("qa-search .answer .quote")).to_contain_text("<img src=x onerror=window.__xss=1>")
    injected = page.evaluate(
        """() => [window.__xss, window.__xss2, window.__xss3,
                  document.querySelector("qa-search").shadowRoot.querySelectorAll("img, script, svg").length]"""
    )
    assert injected == [None, None, None, 0]
    assert unquote(urlsplit(s["links"][0]).path) == f"/view/{payload['document_id']}"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("narrow-360", {"viewport": {"width": 360, "height": 740}}),
        ("dark", {"color_scheme": "dark"}),
        ("zoom-200", {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}),
    ],
)
def test_layout_narrow_dark_and_zoomed(
    new_context: Any, service: Any, artifacts: Path, name: str, options: dict
) -> None:
    """Nothing overflows sideways at 360 px or at 200% zoom (a 1280 px screen seen as 640 CSS px)."""
    page = new_context(**options).new_page()
    page.goto(service.url + "/")
    page.locator("qa-search input").fill(ANSWERABLE)
    wait_for_status(page, r"^3 results$")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(artifacts / f"demo-{name}.png"), full_page=True)
    viewer = page.locator("qa-search [role=option] a").first.get_attribute("href")
    page.goto(viewer)
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") == 0
    in_view = "(m) => { const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    assert page.locator("mark#cited").evaluate(in_view)
    page.screenshot(path=str(artifacts / f"viewer-{name}.png"))
    assert overflow == 0
    dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert dark == (name == "dark")


def test_the_collection_attribute_asks_that_collection(page: Page, service: Any) -> None:
    """`<qa-search collection="...">` asks that collection and links into its viewer; the metadata's title shows."""
    created = service.post("/v1/collections", {"name": "wildlife"})
    assert created.status_code in (201, 409), created.text
    text = "# Field notes\n\nThe zebra census counted 4,213 zebras on the northern plain.\n"
    document = {"document_id": "zebras.md", "text": text, "metadata": {"title": "Zebra census 2024", "tags": ["field"]}}
    added = service.post("/v1/collections/wildlife/documents", document)
    assert added.status_code == 201, added.text
    asks: list[str] = []
    page.on("request", lambda r: asks.append(r.url) if "/ask" in r.url else None)
    page.goto(service.url + "/")
    page.locator("qa-search").evaluate("(el) => el.setAttribute('collection', 'wildlife')")
    page.locator("qa-search input").press_sequentially("How many zebras did the census count?", delay=15)
    shown = wait_for_status(page, r"^1 result$")
    assert shown["answer"] == ["The zebra census counted 4,213 zebras on the northern plain."]
    assert shown["titles"] == ["Zebra census 2024"]
    assert urlsplit(asks[-1]).path == "/v1/collections/wildlife/ask"
    link = urlsplit(shown["links"][0])
    assert link.path == "/v1/collections/wildlife/view/zebras.md" and link.fragment == "cited"
    viewer = page.context.new_page()
    viewer.goto(shown["links"][0])
    expect(viewer.locator("mark#cited")).to_have_text("The zebra census counted 4,213 zebras on the northern plain.")
    viewer.close()
    page.locator("qa-search").evaluate("(el) => el.setAttribute('collection', 'nothere')")
    page.locator("qa-search input").fill("")
    page.locator("qa-search input").press_sequentially("How many zebras?", delay=15)
    expect(page.locator("qa-search [role=status]")).to_have_text(
        "Cannot ask that: there is no such collection", timeout=15_000
    )
