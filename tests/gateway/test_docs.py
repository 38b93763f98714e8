"""The gateway's API page works under its own Content-Security-Policy."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import GatewaySettings, create_gateway

pytestmark = pytest.mark.anyio


async def test_docs_page_links_a_same_origin_stylesheet_its_csp_allows() -> None:
    app = create_gateway(GatewaySettings(registry_url="http://127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        page = await client.get("/docs")
        css = await client.get("/docs.css")
    csp = page.headers["content-security-policy"]
    assert "style-src 'self'" in csp
    assert "<style>" not in page.text  # inline styles would be refused
    assert '<link rel=stylesheet href="/docs.css">' in page.text
    assert "/v1/invoke/{agent}" in page.text
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
