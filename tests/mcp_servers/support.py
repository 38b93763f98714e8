"""Helpers of the tool-server tests: raw 2026-07-28 requests and live tool servers."""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings
from mcp_servers.runtime import build_tool_server_app, load_tool_server
from registry.models import CheckSpec
from tests.support.live import free_port, serve

MODERN = "2026-07-28"
_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "meshgate-tests", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def modern(
    client: httpx.AsyncClient,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    url: str = "/mcp",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One self-contained 2026-07-28 request (no initialize, no session)."""
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": method,
        "params": {**(params or {}), "_meta": _META},
    }
    sent = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if method == "tools/call" and params:
        sent["Mcp-Name"] = str(params.get("name"))
    return await client.post(url, content=json.dumps(body), headers={**sent, **(headers or {})})


async def call(client: httpx.AsyncClient, tool: str, **arguments: Any) -> dict[str, Any]:
    """``tools/call`` in the stateless era; the JSON-RPC result (asserting HTTP 200)."""
    response = await modern(client, "tools/call", {"name": tool, "arguments": arguments})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


@contextlib.asynccontextmanager
async def in_process(
    app: Starlette, host: str = "127.0.0.1:8000"
) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` with its lifespan running and a client wired to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            yield client


@contextlib.asynccontextmanager
async def running_tool_server(
    server: MCPServer[Any] | str,
    *,
    registry_url: str | None = None,
    http: httpx.AsyncClient | None = None,
    check: CheckSpec | None = None,
    instance: str | None = None,
    mcp: McpHttpSettings | None = None,
) -> AsyncIterator[tuple[str, Starlette]]:
    """A tool server on a fresh loopback port; yields its base URL and app."""
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):  # a free port may be taken before the bind
            port = free_port()
            config = HostingConfig(
                service=server if isinstance(server, str) else server.name,
                instance=instance,
                port=port,
                registry_url=registry_url,
                **({"check": check} if check else {}),
            )
            mcp_server = load_tool_server(server) if isinstance(server, str) else server
            app = build_tool_server_app(mcp_server, config, mcp or McpHttpSettings(), http=http)
            try:
                url = await stack.enter_async_context(serve(app, port=port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            else:
                break
        yield url, app
