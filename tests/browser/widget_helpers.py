"""What the browser tests read from a ``<qa-search>``, and the questions they ask it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

ANSWERABLE = "How many agencies participate in Secure Communities?"
ANSWER = "Over 3,000 agencies participate, sharing biometric data to identify removable noncitizens."
OTHER = "How many fusion centers are there?"
UNANSWERABLE = "What is the airspeed velocity of an unladen swallow?"

# Reads the widget's state from inside its shadow root. `status` is the live region's text
# (what a screen reader hears); `retry` is the retry button beside it (outside the live region).
STATE = """(el) => {
  const r = el.shadowRoot, input = r.querySelector("input"), list = r.querySelector("[role=listbox]");
  const text = (sel) => [...r.querySelectorAll(sel)].map((n) => n.textContent);
  const retry = r.querySelector("[part=retry]");
  return {
    value: input.value,
    focused: document.activeElement === el && r.activeElement === input,
    expanded: input.getAttribute("aria-expanded"),
    activedescendant: input.getAttribute("aria-activedescendant"),
    selected: [...r.querySelectorAll("[role=option]")].map((o) => o.getAttribute("aria-selected")),
    optionIds: [...r.querySelectorAll("[role=option]")].map((o) => o.id),
    listHidden: list.hidden,
    status: r.querySelector("[role=status]").textContent,
    statusClass: r.querySelector("[part=status]").className,
    retry: retry && [retry.textContent, retry.disabled],
    labels: text(".label"),
    answer: text(".answer .quote"),
    quotes: text(".quote"),
    marks: text(".answer mark"),
    crumbs: text(".crumbs"),
    titles: text(".doc"),
    confidence: text(".conf"),
    links: [...r.querySelectorAll("[role=option] a")].map((a) => a.href),
  };
}"""


def state(page: Page) -> dict:
    return page.locator("qa-search").evaluate(STATE)


def wait_for_status(page: Page, pattern: str) -> dict:
    expect(page.locator("qa-search [role=status]")).to_have_text(re.compile(pattern), timeout=15_000)
    return state(page)
