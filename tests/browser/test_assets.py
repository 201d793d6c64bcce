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


@pytest.mark.browser
def test_swagger_ui_runs_from_this_server_alone(page: Any, service: Any) -> None:
    """/docs renders every operation with Swagger UI served from /docs/assets: no CDN, so it works offline."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(service.url + "/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/v1/ask", "/v1/search", "/v1/documents"} <= {p.replace("\u200b", "") for p in paths}
    assert requested and all(url.startswith(service.url + "/") for url in requested), requested


@pytest.mark.browser
def test_swagger_assets_are_the_listed_files_only(service: Any) -> None:
    script = service.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=86400" and b"SwaggerUIBundle" in script.content
    assert service.get("/docs/assets/swagger-ui.css").headers["content-type"] == "text/css; charset=utf-8"
    for name in ("index.html", "..%2F__init__.py", "consts.py"):
        missing = service.get(f"/docs/assets/{name}")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    page = service.get("/docs").text
    assert "http://" not in page and "https://" not in page
