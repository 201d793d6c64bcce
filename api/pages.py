"""The service's HTML face: the demo page, the embeddable widget script and the source viewer.

* ``GET /``: the ``<qa-search>`` widget on the loaded index, with a copy-paste embed snippet.
* ``GET /widget.js``: the widget, one dependency-free script (``api/static/widget.js``).
* ``GET /view/{document_id}?start=S&end=E``: a document as readable text with its sections,
  ``text[S:E]`` highlighted in ``<mark id="cited">`` and the section path above it.

The demo page lists documents and the viewer shows their text, so both obey the read rule of
the API (``api.deps.require_reader``): with ``QA_REQUIRE_KEY_FOR_READS`` they answer 401 unless
the request carries ``Authorization: Bearer <key>``, which a reverse proxy that authenticates
its users adds to every request (the pages and the widget's own calls alike). A key is never
taken from a URL. The embed snippet names ``QA_PUBLIC_URL``, or else paths relative to this
server: never the request's ``Host`` header, which the client chooses.

Every string that comes from a document or a request goes through :func:`html.escape`
before it fills a template (``api/static/*.html``; the viewer's body is ``api.render``): a
document is always shown as text, never interpreted as HTML. The pages load nothing but
files from this origin, and their Content-Security-Policy allows nothing more.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path
from string import Template
from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import ServiceDep, SettingsDep, require_reader
from api.render import render_view
from api.state import Service, refresh_if_stale
from qa.engine import Engine
from qa.errors import DocumentNotFound

router = APIRouter(include_in_schema=False)
# The source viewer: at /view/... (the default collection) and /v1/collections/{name}/view/... (api.main).
view_router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).parent / "static"
# The pages run one script and one stylesheet from this origin and call the API on it; nothing else.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The files served from api/static/, with their media types; nothing else there is reachable.
ASSETS = {
    "widget.js": "text/javascript; charset=utf-8",
    "pages.css": "text/css; charset=utf-8",
    "pages.js": "text/javascript; charset=utf-8",
}
# The URL of widget.js stays the same across releases, so caches revalidate (ETag) after an hour.
ASSET_CACHE = "public, max-age=3600"
# The demo page lists at most this many documents; GET /v1/documents has them all.
DEMO_DOCUMENTS = 50


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file held in memory, with its validator."""

    body: bytes
    etag: str
    media_type: str


@lru_cache
def load_asset(name: str) -> Asset:
    """Read ``api/static/<name>`` once."""
    body = (STATIC_DIR / name).read_bytes()
    return Asset(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', ASSETS[name])


@lru_cache
def template(name: str) -> Template:
    """An HTML template from ``api/static/``; every value put in it must be escaped."""
    return Template((STATIC_DIR / name).read_text(encoding="utf-8"))


def asset_response(request: Request, name: str) -> Response:
    """A static file, or 304 when the client's copy is current."""
    asset = load_asset(name)
    headers = {
        "ETag": asset.etag,
        "Cache-Control": ASSET_CACHE,
        # Any site may embed the widget; the script carries no secret.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def page(request: Request, title: str, body: str, *, status: int = 200, kind: str = "plain") -> HTMLResponse:
    """A complete HTML page around ``body`` (markup whose text is already escaped), with the pages' CSP."""
    root = escape(request.scope.get("root_path", ""))
    html = template("page.html").substitute(title=escape(title), root=root, kind=kind, body=body)
    headers = {"Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status, headers=headers)


def message(request: Request, status: int, title: str, text: str) -> HTMLResponse:
    """A short page that says what went wrong (``text`` is escaped markup)."""
    return page(request, title, f"<h1>{escape(title)}</h1>\n<p>{text}</p>", status=status)


def view_href(root: str, document_id: str) -> str:
    """The viewer's URL for a document: each segment of the id percent-encoded."""
    return f"{root}/view/" + "/".join(quote(part, safe="") for part in document_id.split("/"))


async def current_engine(service: Service) -> Engine | None:
    """The engine a collection serves, after picking up an index that another process swapped in."""
    await refresh_if_stale(service)
    return service.engine


@router.api_route("/widget.js", methods=["GET", "HEAD"])
def widget_script(request: Request) -> Response:
    """The ``<qa-search>`` custom element."""
    return asset_response(request, "widget.js")


@router.get("/static/{name}")
def static_file(request: Request, name: str) -> Response:
    """The pages' stylesheet and script."""
    if name not in ASSETS:
        return message(request, 404, "Not found", "There is no such file.")
    return asset_response(request, name)


def embed_snippet(public_url: str | None, root: str) -> str:
    """The two lines that embed the widget: at ``public_url``, else at paths relative to this server."""
    service = public_url or root
    endpoint = f' endpoint="{service}"' if service else ""
    return (
        f'<script src="{service}/widget.js" defer></script>\n'
        f'<qa-search{endpoint} placeholder="Ask the documents…" top-k="3"></qa-search>'
    )


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(require_reader)])
async def demo(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The demo page: the widget on this service, the embed snippet and the indexed documents."""
    root = request.scope.get("root_path", "")
    snippet = embed_snippet(settings.public_url, root)
    engine = await current_engine(request.app.state.service)
    documents = list(engine.index.documents.values()) if engine is not None else []
    items = "".join(
        f'<li><a href="{escape(view_href(root, d.id))}">{escape(d.title)}</a> <code>{escape(d.id)}</code></li>\n'
        for d in documents[:DEMO_DOCUMENTS]
    )
    more = f"<p>and {len(documents) - DEMO_DOCUMENTS} more.</p>" if len(documents) > DEMO_DOCUMENTS else ""
    listing = f"<ul class='docs'>\n{items}</ul>{more}" if documents else "<p>No index is loaded yet.</p>"
    body = template("demo.html").substitute(
        root=escape(root), snippet=escape(snippet), count=len(documents), documents=listing
    )
    return page(request, "Ask the documents", body, kind="demo")


@view_router.get("/view/{document_id:path}", response_class=HTMLResponse, dependencies=[Depends(require_reader)])
async def view(
    request: Request,
    service: ServiceDep,
    document_id: str,
    start: Annotated[int | None, Query(description="Start of the cited range")] = None,
    end: Annotated[int | None, Query(description="End of the cited range (exclusive)")] = None,
) -> HTMLResponse:
    """A document with the cited range ``[start, end)`` highlighted and its section path shown."""
    engine = await current_engine(service)
    if engine is None:
        return message(request, 503, "Not ready", "The index is not loaded yet; try again in a moment.")
    try:
        doc = engine.document(document_id)
    except DocumentNotFound:
        return message(request, 404, "Not found", "There is no document with this id here.")
    if start is not None or end is not None:
        if start is None or end is None or not 0 <= start < end <= len(doc.text):
            rule = f"Give both <code>start</code> and <code>end</code>, with 0 ≤ start &lt; end ≤ {len(doc.text)}"
            return message(request, 400, "Bad range", f"{rule} (the document's length); got {start}–{end}.")
    # Escaping a long document takes a while: keep it off the event loop.
    html = await anyio.to_thread.run_sync(render_view, doc, start, end)
    return page(request, f"{doc.title} · source", html, kind="viewer")
