"""How ``/widget.js`` and the pages are served, and the widget's size as docs/widget.md states it."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "api" / "static" / "widget.js"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def test_docs_state_the_widget_size() -> None:
    """docs/widget.md gives widget.js's size raw and gzipped (gzip -9), to the byte."""
    body = WIDGET.read_bytes()
    raw, packed = len(body), len(gzip.compress(body, compresslevel=9, mtime=0))
    docs = (ROOT / "docs" / "widget.md").read_text(encoding="utf-8")
    stated = re.search(r"`widget\.js` is ([\d,]+) bytes, ([\d,]+) bytes gzipped", docs)
    assert stated is not None
    assert (int(stated[1].replace(",", "")), int(stated[2].replace(",", ""))) == (raw, packed)


@pytest.mark.browser
def test_the_widget_script_is_cacheable_javascript_for_any_site(service: Any) -> None:
    response = service.get("/widget.js")
    assert response.status_code == 200 and response.content == WIDGET.read_bytes()
    headers = response.headers
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert (headers["cache-control"], headers["access-control-allow-origin"]) == ("public, max-age=3600", "*")
    assert headers["x-content-type-options"] == "nosniff"
    again = service.get("/widget.js", headers={"If-None-Match": headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/", "/view/immigration-data-sharing.txt?start=0&end=9"])
def test_the_pages_allow_only_what_they_need(service: Any, path: str) -> None:
    response = service.get(path)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert response.headers["x-frame-options"] == "DENY"
