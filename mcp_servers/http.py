"""Serve an ``MCPServer`` over streamable HTTP inside a host app.

One endpoint answers both protocol eras: the stateless 2026-07-28 protocol
(chosen by its ``MCP-Protocol-Version`` header) and the handshake versions,
with sessions. DNS-rebinding protection is always on; localhost is always
admitted and settings add the hosts and origins a deployment needs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from mcp_servers.guard import install_guard

__all__ = [
    "LOCAL_HOSTS",
    "LOCAL_ORIGINS",
    "McpHttpSettings",
    "describe_tools",
    "mcp_app",
    "transport_security",
]

#: Host header values admitted on every server (any port).
LOCAL_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")
#: Origins admitted on every server (any port).
LOCAL_ORIGINS = (
    "http://127.0.0.1:*",
    "http://localhost:*",
    "http://[::1]:*",
    "http://127.0.0.1",
    "http://localhost",
    "http://[::1]",
)
_TOOL_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


@dataclass(frozen=True)
class McpHttpSettings:
    """How the MCP endpoint is exposed.

    ``allowed_hosts`` are Host header values admitted besides localhost
    (``"knowledge:8000"``, or ``"knowledge:*"`` for any port);
    ``allowed_origins`` are Origins admitted besides localhost
    (``"https://app.example"``, ``"http://knowledge:*"``).
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    path: str = "/mcp"

    def admitting(self, url: str | None) -> McpHttpSettings:
        """These settings, also admitting the Host of ``url`` (the name others reach us by)."""
        host = urlsplit(url).netloc.rpartition("@")[2] if url else ""
        if not host or host in self.allowed_hosts:
            return self
        return replace(self, allowed_hosts=(*self.allowed_hosts, host))


def transport_security(settings: McpHttpSettings) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding settings for ``settings``: protection on, localhost admitted."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys((*LOCAL_HOSTS, *settings.allowed_hosts))),
        allowed_origins=list(dict.fromkeys((*LOCAL_ORIGINS, *settings.allowed_origins))),
    )


def mcp_app(
    server: MCPServer[Any], settings: McpHttpSettings
) -> tuple[Starlette, Callable[[], AbstractAsyncContextManager[None]]]:
    """The streamable-HTTP app of ``server`` at ``settings.path``, and the lifespan it needs.

    Mount the app's routes (or the app) in a host app whose lifespan enters the
    returned context manager: it runs the SDK's session manager, without which
    the first request fails. The session manager runs once per app; build a new
    app for each host lifetime. Unknown tools and arguments that break a tool's
    schema get protocol-correct errors (see :mod:`mcp_servers.guard`).
    """
    install_guard(server)
    # The app must be built first: it creates the session manager.
    app = server.streamable_http_app(
        streamable_http_path=settings.path,
        transport_security=transport_security(settings),
    )
    manager = server.session_manager
    return app, manager.run


async def describe_tools(server: MCPServer[Any]) -> list[dict[str, Any]]:
    """The tool list for a registration, in MCP's JSON field names, without empty fields."""
    described = []
    for tool in await server.list_tools():
        data = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
        described.append({key: data[key] for key in _TOOL_FIELDS if key in data})
    return described
