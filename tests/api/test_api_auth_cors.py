"""Keys for writes (and optionally reads), CORS for the widget, and the security headers."""

from __future__ import annotations

from api_helpers import API_KEY, assert_problem

from api.middleware import DEFAULT_CSP
from api.routes.docs import DOCS_CSP

DOC = {"document_id": "k.md", "text": "# K\n\nKey test text."}
ORIGIN = "https://partner.example"


def test_write_needs_a_valid_key(make_client) -> None:
    client = make_client(api_keys=["first", API_KEY])
    response = client.post("/v1/documents", json=DOC)
    assert_problem(response, 401, "Authorization: Bearer <key>")
    assert response.headers["www-authenticate"] == "Bearer"
    response = client.post("/v1/documents", json=DOC, headers={"Authorization": "Bearer wrong"})
    assert_problem(response, 403, "the API key is not valid")
    assert client.post("/v1/documents", json=DOC, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 201
    assert client.delete("/v1/documents/k.md", headers={"Authorization": "bearer first"}).status_code == 204


def test_writes_are_refused_when_no_keys_are_configured(make_client) -> None:
    client = make_client()
    response = client.post("/v1/documents", json=DOC, headers={"Authorization": "Bearer anything"})
    assert_problem(response, 403, "writes are disabled on this server: no API keys are set (QA_API_KEYS, QA_KEYS_FILE)")
    assert_problem(client.delete("/v1/documents/k.md"), 403, "no API keys are set")


def test_reads_are_open_unless_required(make_client) -> None:
    open_client = make_client(api_keys=[API_KEY])
    assert open_client.get("/v1/search?q=fusion").status_code == 200
    closed = make_client(api_keys=[API_KEY], require_key_for_reads=True)
    for path in ("/v1/search?q=fusion", "/v1/ask?q=fusion", "/v1/documents", "/v1/documents/x.txt", "/v1/passages/x"):
        assert_problem(closed.get(path), 401)
        assert_problem(closed.get(path, headers={"Authorization": "Bearer wrong"}), 403)
    assert closed.get("/v1/documents", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert closed.get("/healthz").status_code == 200 and closed.get("/readyz").status_code == 200


def test_cors_allows_only_configured_origins(make_client) -> None:
    client = make_client(cors_origins=[ORIGIN, "https://other.example"])
    allowed = client.get("/v1/search?q=fusion", headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    refused = client.get("/v1/search?q=fusion", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers
    # Errors carry the header too, so the widget can read them.
    error = client.post("/v1/ask", json={}, headers={"Origin": ORIGIN})
    assert error.status_code == 422 and error.headers["access-control-allow-origin"] == ORIGIN


def test_cors_preflight(make_client) -> None:
    client = make_client(cors_origins=[ORIGIN])
    request = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/v1/ask", headers={"Origin": ORIGIN, **request})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert set(ok.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "DELETE"}
    refused = client.options("/v1/ask", headers={"Origin": "https://evil.example", **request})
    assert_problem(refused, 400, "Disallowed CORS origin")
    assert "access-control-allow-origin" not in refused.headers


def test_security_headers_on_every_response(make_client) -> None:
    client = make_client(raise_server_exceptions=False)
    for response in (
        client.get("/healthz"),
        client.get("/v1/ask?q=fusion"),
        client.get("/nowhere"),
        client.post("/v1/ask", content=b"{", headers={"content-type": "application/json"}),
        client.get("/metrics"),
        client.get("/openapi.json"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == DEFAULT_CSP
        assert response.headers["referrer-policy"] == "no-referrer"


def test_a_route_that_sets_its_own_csp_keeps_it(make_client) -> None:
    response = make_client().get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == DOCS_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
