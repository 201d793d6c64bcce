"""``/docs``: Swagger UI served from this server, with a Content-Security-Policy that allows nothing else.

Swagger UI's files come from the ``fastapi-offline`` package (MIT; Swagger UI 5,
which reads the OpenAPI 3.1 schema FastAPI writes), so the page works on a
server with no internet access and the browser fetches nothing from a CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)

# Swagger UI starts from an inline script (FastAPI's page); everything else comes from this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


def assets_dir() -> Path:
    """The folder holding Swagger UI's files."""
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Interactive API documentation."""
    response = get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title="qa-cite API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png",
    )
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> FileResponse:
    """One of Swagger UI's files (only those named in ASSETS)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="no such documentation asset")
    return FileResponse(assets_dir() / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
