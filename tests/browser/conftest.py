"""Real-browser fixtures: one real ``qa serve``, two host sites on other origins, headless Chromium.

The service runs as a subprocess on a free 127.0.0.1 port, on an index built from a
copy of ``corpus/`` in a temporary directory. Chromium is Debian's ``/usr/bin/chromium``
driven by Playwright's Python package; no browser is ever downloaded. Every page a test
opens records Content-Security-Policy violations and uncaught errors, and the ``page``
fixture fails the test if there were any.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote as quote_url

import httpx
import pytest
from http_helpers import free_port
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts"
API_KEY = "browser-test-key"
# Model load plus indexing the default corpus takes ~15 s here; allow for a slow CI machine.
READY_TIMEOUT_S = 180
# Collects what a page's CSP blocked (the event fires in the page; Playwright's init
# scripts run outside the page's CSP, so this listener itself is never blocked).
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def require_chromium() -> None:
    """Skip, saying why, only where Debian's Chromium is not installed (CI installs it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (never `playwright install`)")


class HostSite:
    """A web site on its own 127.0.0.1 port (its own origin) that serves one HTML page at ``/``."""

    def __init__(self) -> None:
        self.html = b""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(site.html)))
                self.end_headers()
                self.wfile.write(site.html)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # the stdlib's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Service:
    """The running ``qa serve``."""

    url: str
    allowed: HostSite
    refused: HostSite
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        # params=None, not {}: httpx drops a query already in the path when given empty params.
        return httpx.get(self.url + path, params=params or None, headers=headers, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST JSON with the service's key (every scope)."""
        headers = {"Authorization": f"Bearer {API_KEY}"}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=60)

    def upload(self, name: str, data: bytes) -> httpx.Response:
        """A multipart upload with the service's key."""
        headers = {"Authorization": f"Bearer {API_KEY}"}
        return httpx.post(self.url + "/v1/documents", files={"file": (name, data)}, headers=headers, timeout=60)

    def delete(self, path: str) -> httpx.Response:
        """DELETE with the service's key."""
        return httpx.delete(self.url + path, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)

    def ask(self, question: str, k: int = 3) -> dict[str, object]:
        response = self.get("/v1/ask", q=question, k=k)
        response.raise_for_status()
        answer: dict[str, object] = response.json()
        return answer


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"qa serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"qa serve not ready after {READY_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``qa serve`` on the default corpus, allowing one host site's origin and not the other's."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    shutil.copytree(ROOT / "corpus", tmp / "corpus")
    allowed, refused = HostSite(), HostSite()
    port = free_port()
    env = {
        **os.environ,
        "QA_CORPUS_DIR": str(tmp / "corpus"),
        "QA_INDEX_DIR": str(tmp / "index"),
        "QA_CORS_ORIGINS": json.dumps([allowed.origin]),
        "QA_API_KEYS": json.dumps([API_KEY]),
    }
    for name in ("QA_RATE_LIMIT", "QA_DEBUG_DELAY_MS", "QA_REQUIRE_KEY_FOR_READS"):
        env.pop(name, None)
    log = tmp / "serve.log"
    beside = Path(sys.executable).with_name("qa")  # the virtualenv's own `qa`
    qa = str(beside) if beside.exists() else shutil.which("qa") or "qa"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [qa, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=tmp, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield Service(url, allowed, refused, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        allowed.close()
        refused.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Problems:
    """What went wrong in the pages of one browser context."""

    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        found: list[str] = []
        for page in self.pages:
            if not page.is_closed():
                found += page.evaluate("window.__csp || []")
        return found + [m for m in self.console_errors if "Content Security Policy" in m]


@pytest.fixture
def problems() -> Problems:
    return Problems()


def open_context(browser: Browser, problems: Problems, **options: Any) -> BrowserContext:
    """A browser context whose pages record CSP violations, uncaught errors and console errors."""
    context = browser.new_context(**{"viewport": {"width": 1000, "height": 800}, **options})
    context.add_init_script(CSP_LISTENER)

    def watch(page: Page) -> None:
        problems.pages.append(page)
        page.on("pageerror", lambda error: problems.errors.append(str(error)))
        page.on("console", lambda m: problems.console_errors.append(m.text) if m.type == "error" else None)

    context.on("page", watch)
    return context


@pytest.fixture
def new_context(browser: Browser, problems: Problems) -> Iterator[Callable[..., BrowserContext]]:
    """Makes browser contexts (default 1000x800, light; options as ``Browser.new_context``).

    The test fails if any of their pages had a CSP violation or an uncaught error.
    """
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        contexts.append(open_context(browser, problems, **options))
        return contexts[-1]

    yield make
    violations = problems.csp_violations()
    for context in contexts:
        context.close()
    assert violations == [], "Content-Security-Policy blocked something"
    assert problems.errors == [], "uncaught errors in the page"


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


PAYLOAD_TEXT = (
    "Pelican field notes\n"
    "The pelican inventory lists two markers, <img src=x onerror=window.__xss=1> and "
    "<script>window.__xss2=1</script>, and both are written exactly like that.\n"
    "Pelicans nest on the north shore of the lagoon every spring.\n"
)


@pytest.fixture(scope="module")
def payload(service: Service) -> Iterator[dict[str, str]]:
    """A plain-text document whose id, title and text carry HTML, added through the API."""
    document = {
        "document_id": "notes/pelican & <co>.txt",
        "title": "<svg onload=window.__xss3=1> Pelican notes",
        "text": PAYLOAD_TEXT,
    }
    headers = {"Authorization": f"Bearer {API_KEY}"}
    response = httpx.post(service.url + "/v1/documents", json=document, headers=headers, timeout=60)
    assert response.status_code == 201, response.text
    quote = PAYLOAD_TEXT.splitlines()[1]
    yield {**document, "quote": quote}
    path = "/".join(quote_url(part, safe="") for part in document["document_id"].split("/"))
    httpx.delete(f"{service.url}/v1/documents/{path}", headers=headers, timeout=60)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
