"""How ``<qa-search>`` reports what went wrong: refusals, overload, failures, timeouts and odd answers.

A real ``qa serve`` answers where it can produce the case; otherwise the response is faked at the
browser's network layer (``page.route``), or, for a body that stalls, by a tiny server of our own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect
from widget_helpers import ANSWER, ANSWERABLE, state, wait_for_status

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000  # widget.js TIMEOUT_MS
CANNOT_READ = "The search service sent an answer this page cannot read."
# Records every qa-result event's detail.
RECORD_EVENTS = """() => {
  window.__results = [];
  document.addEventListener("qa-result", (e) => window.__results.push(e.detail));
}"""
# Records each text the live region takes.
RECORD_ANNOUNCEMENTS = """(el) => {
  const live = el.shadowRoot.querySelector("[role=status]");
  window.__said = [];
  new MutationObserver(() => window.__said.push(live.textContent))
    .observe(live, { childList: true, subtree: true, characterData: true });
}"""


def problem(status: int, detail: str, **extra: Any) -> str:
    """A problem-details body shaped as api/errors.py shapes it."""
    titles = {422: "Unprocessable Entity", 429: "Too Many Requests", 503: "Service Unavailable"}
    return json.dumps({"type": "about:blank", "title": titles[status], "status": status, "detail": detail, **extra})


@pytest.mark.parametrize(
    ("status", "headers", "body", "message", "retry"),
    [
        (
            429,
            {"Retry-After": "7"},
            problem(429, "slow down"),
            "Too many questions right now. Try again in 7 seconds.",
            ["Try again in 7 s", True],
        ),
        (
            429,
            {},
            problem(429, "slow down"),
            "Too many questions right now. Try again in a moment.",
            ["Try again", False],
        ),
        (
            503,
            {},
            problem(503, "index is loading"),
            "The search service failed (HTTP 503). Try again in a moment.",
            ["Try again", False],
        ),
        (
            422,
            {},
            problem(422, "question contains a control character (U+0007)"),
            "Cannot ask that: question contains a control character (U+0007)",
            None,
        ),
        # A field error's msg says what is wrong; detail only counts the fields.
        (
            422,
            {},
            problem(
                422,
                "1 field is not valid",
                errors=[{"loc": ["query", "q"], "msg": "String should have at most 1000 characters"}],
            ),
            "Cannot ask that: String should have at most 1000 characters",
            None,
        ),
        (
            422,
            {},
            problem(
                422,
                "1 field is not valid",
                errors=[{"loc": ["query", "q"], "msg": "<img src=x onerror=window.__xss=1>"}],
            ),
            "Cannot ask that: <img src=x onerror=window.__xss=1>",
            None,
        ),
        (
            422,
            {},
            problem(422, "2 fields are not valid", errors=[{"loc": ["query"], "msg": 5}]),
            "Cannot ask that: 2 fields are not valid",
            None,
        ),
        (422, {}, "<html>not json</html>", "Cannot ask that: HTTP 422", None),
        (0, {}, "", "Could not reach the search service. Check the connection and try again.", ["Try again", False]),
    ],
    ids=["429 wait", "429", "503", "422 detail", "422 msg", "422 html", "422 msg not text", "422 not json", "network"],
)
def test_error_states(
    page: Page, service: Any, status: int, headers: dict, body: str, message: str, retry: list | None
) -> None:
    """Each failure reads as what it is, as text (responses faked at the browser's network layer)."""

    def fail(route: Route) -> None:
        if status == 0:
            route.abort("connectionrefused")
        else:
            route.fulfill(status=status, headers=headers, content_type="application/problem+json", body=body)

    page.route("**/v1/ask?*", fail)
    page.goto(service.url + "/")
    page.locator("qa-search input").fill(ANSWERABLE)
    s = wait_for_status(page, r".+[^…]$")
    assert (s["status"], s["retry"]) == (message, retry)
    assert "error" in s["statusClass"] and s["listHidden"]
    injected = page.evaluate(
        "() => [window.__xss, document.querySelector('qa-search').shadowRoot.querySelectorAll('img').length]"
    )
    assert injected == [None, 0]
    page.unroute("**/v1/ask?*")
    if retry == ["Try again", False]:
        page.locator("qa-search [part=retry]").click()
        assert wait_for_status(page, r"^3 results$")["answer"] == [ANSWER]


def test_a_refused_question_says_why_in_the_servers_words(page: Page, service: Any) -> None:
    """Regression: a 422 said "1 field is not valid"; the reason is in its first error's msg."""
    question = "x" * 1001  # over the limit; the box's maxlength stops typing it, ask() does not
    refused = service.get("/v1/ask", q=question)
    assert refused.status_code == 422 and refused.json()["detail"] == "1 field is not valid"
    page.goto(service.url + "/")
    page.locator("qa-search").evaluate("(el, q) => el.ask(q)", question)
    s = wait_for_status(page, r"^Cannot ask")
    assert s["status"] == f"Cannot ask that: {refused.json()['errors'][0]['msg']}"
    assert "1001 characters" in s["status"]


def test_the_429_countdown_is_announced_once_and_agrees_with_its_button(page: Page, service: Any) -> None:
    """Regression: the ticking retry button sat in the atomic live region (re-read every second),
    and the text kept saying "in 2 seconds" while the button counted down."""
    page.route(
        "**/v1/ask?*",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "2"},
            content_type="application/problem+json",
            body=problem(429, "slow down"),
        ),
    )
    page.goto(service.url + "/")
    widget = page.locator("qa-search")
    widget.evaluate(RECORD_ANNOUNCEMENTS)
    widget.evaluate("(el) => el.ask('How many zebras?')")
    retry = page.locator("qa-search [part=retry]")
    expect(retry).to_have_text("Try again in 1 s", timeout=5_000)
    # On screen the wait is the button's alone; the live region's sentence about it is for screen readers.
    shown = widget.evaluate(
        """(el) => { const live = el.shadowRoot.querySelector("[role=status]").cloneNode(true);
                     live.querySelectorAll(".sr").forEach((n) => n.remove()); return live.textContent; }"""
    )
    assert shown == "Too many questions right now."
    expect(retry).to_be_enabled(timeout=5_000)
    assert state(page)["retry"] == ["Try again", False]
    said = page.evaluate("window.__said")
    assert said == ["Searching…", "Too many questions right now. Try again in 2 seconds."]


@pytest.mark.parametrize(
    "body",
    [
        {
            "answerable": True,
            "confidence": 0.5,
            "citations": [None, {"quote": "q", "document_id": "d", "start": 0, "end": 1}],
        },
        {
            "answerable": True,
            "confidence": 0.5,
            "citations": [{"quote": {"x": 1}, "document_id": "d", "start": 0, "end": 1}],
        },
        {
            "answerable": True,
            "confidence": 0.5,
            "citations": [{"quote": "q", "document_id": None, "start": None, "end": 1}],
        },
        {
            "answerable": True,
            "confidence": 0.5,
            "citations": [{"quote": "q", "document_id": "d", "start": 0, "end": 1, "section_path": "a"}],
        },
        {
            "answerable": True,
            "confidence": None,
            "citations": [{"quote": "q", "document_id": "d", "start": 0, "end": 1}],
        },
        {"answerable": True, "citations": "none"},
        "<html>a proxy's login page</html>",
    ],
    ids=[
        "null citation",
        "quote object",
        "no document id",
        "section path string",
        "no confidence",
        "citations string",
        "html",
    ],
)
def test_an_answer_of_the_wrong_shape_is_reported_not_half_drawn(page: Page, service: Any, body: Any) -> None:
    """Regression: a null citation threw in render, left "2 results" over an empty list, and no qa-result fired."""
    text = body if isinstance(body, str) else json.dumps(body)
    page.route("**/v1/ask?*", lambda route: route.fulfill(status=200, content_type="application/json", body=text))
    page.goto(service.url + "/")
    page.evaluate(RECORD_EVENTS)
    page.locator("qa-search").evaluate("(el) => el.ask('How many zebras?')")
    s = wait_for_status(page, r".+[^…]$")
    assert (s["status"], s["retry"], s["listHidden"], s["expanded"]) == (
        CANNOT_READ,
        ["Try again", False],
        True,
        "false",
    )
    assert page.evaluate("window.__results") == [None]


class StallingService:
    """A fake service on its own 127.0.0.1 port whose ``/v1/ask`` stalls until closed.

    With ``headers=True`` it first sends 200 headers and part of a JSON body; else nothing at all.
    """

    def __init__(self, *, headers: bool) -> None:
        self.headers = headers
        self.released = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if headers:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Access-Control-Allow-Origin", "*")
                    self.send_header("Content-Length", "200")
                    self.end_headers()
                    self.wfile.write(b'{"question": "x", "answerable": true, ')
                    self.wfile.flush()
                service.released.wait(60)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # the stdlib's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=[False, True], ids=["no headers", "headers then a stalled body"])
def stalling(request: pytest.FixtureRequest) -> Iterator[StallingService]:
    stalled = StallingService(headers=request.param)
    yield stalled
    stalled.close()


def test_a_stalled_answer_is_reported_as_too_slow(page: Page, service: Any, stalling: StallingService) -> None:
    """Regression: a body that stalled past the timeout read as "an answer this page cannot read"."""
    service.allowed.html = f"""<!doctype html><html><body>
<qa-search endpoint="{stalling.origin}"></qa-search>
<script src="{service.url}/widget.js"></script>
</body></html>""".encode()
    page.clock.install()  # the widget's 15 s timeout runs on a fake clock that the test moves on
    page.goto(service.allowed.origin + "/")
    page.evaluate(RECORD_EVENTS)
    ask = "(el) => { el.ask('How many zebras?'); }"  # not awaited: ask() settles only when the request does
    if stalling.headers:
        with page.expect_response(f"{stalling.origin}/**"):
            page.locator("qa-search").evaluate(ask)
        page.wait_for_timeout(200)  # real time: lets the widget get from the headers to reading the body
    else:
        page.locator("qa-search").evaluate(ask)
    expect(page.locator("qa-search [role=status]")).to_have_text("Searching…")
    page.clock.run_for(TIMEOUT_MS + 1)
    s = wait_for_status(page, r".+[^…]$")
    assert (s["status"], s["retry"]) == ("The search service took too long to answer.", ["Try again", False])
    assert page.evaluate("window.__results") == [None]
