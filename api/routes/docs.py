"""``/docs``: Swagger UI, with a Content-Security-Policy that lets exactly its assets load."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

# Swagger UI comes from jsDelivr and starts from an inline script; it fetches only our schema.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Interactive API documentation."""
    response = get_swagger_ui_html(openapi_url=request.app.openapi_url or "/openapi.json", title="qa-cite API")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
