"""mcp_app: the SDK's streamable-HTTP app with DNS-rebinding protection always on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from mcp_servers.http import McpHttpSettings, describe_tools, mcp_app, transport_security
from mcp_servers.quiet import quiet_server
from tests.mcp_servers.support import modern

pytestmark = pytest.mark.anyio


def _server():  # type: ignore[no-untyped-def]
    server = quiet_server("echoer")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    return server


def test_protection_is_on_and_localhost_always_admitted() -> None:
    security = transport_security(McpHttpSettings(allowed_hosts=("knowledge:*",)))
    assert security.enable_dns_rebinding_protection is True
    assert {"127.0.0.1:*", "localhost:*", "[::1]:*", "knowledge:*"} <= set(security.allowed_hosts)
    assert "http://localhost:*" in security.allowed_origins


@contextlib.asynccontextmanager
async def _hosted(settings: McpHttpSettings, host: str) -> AsyncIterator[httpx.AsyncClient]:
    app, lifespan = mcp_app(_server(), settings)

    @contextlib.asynccontextmanager
    async def host_lifespan(_: Starlette) -> AsyncIterator[None]:
        async with lifespan():
            yield

    # Mounted the way agents do: the host app's own lifespan runs the sessions.
    host_app = Starlette(routes=app.routes, lifespan=host_lifespan)
    async with host_app.router.lifespan_context(host_app):
        transport = httpx.ASGITransport(app=host_app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            yield client


async def test_mounted_in_a_host_app_at_a_custom_path() -> None:
    settings = McpHttpSettings(allowed_hosts=("agent:9000",), path="/tools")
    async with _hosted(settings, "agent:9000") as client:
        answer = await modern(client, "tools/list", url="/tools")
        assert answer.status_code == 200
        assert answer.json()["result"]["tools"][0]["name"] == "echo"
        assert (
            await modern(client, "tools/list", url="/tools", headers={"Host": "x:1"})
        ).status_code == 421


async def test_the_handshake_era_opens_a_session() -> None:
    async with _hosted(McpHttpSettings(), "127.0.0.1:8000") as client:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = {"Accept": "application/json, text/event-stream"}
        answer = await client.post("/mcp", json=initialize, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["mcp-session-id"]


async def test_describe_tools_uses_mcp_field_names_without_nulls() -> None:
    (tool,) = await describe_tools(_server())
    assert set(tool) == {"name", "description", "inputSchema", "outputSchema"}
    assert tool["name"] == "echo"
    assert tool["inputSchema"]["required"] == ["text"]


def test_admitting_a_public_url_adds_its_host_once() -> None:
    settings = McpHttpSettings(allowed_hosts=("a:1",))
    assert settings.admitting(None) is settings
    assert settings.admitting("http://a:1/mcp") is settings
    assert settings.admitting("http://user@b:2/x").allowed_hosts == ("a:1", "b:2")
