"""A real mesh for the ``/mcp`` tests: registry, calc and knowledge tool servers, the
calculator agent, and the gateway app with ``/mcp`` mounted, all on loopback sockets.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from mcp import Client
from starlette.applications import Starlette

from agents.calculator import agent as calculator
from agents.tools import MeshTools
from gateway.app import Gateway, GatewaySettings, create_gateway
from gateway.mcp import McpMount
from mcp_servers.hosting import HostingConfig
from mcp_servers.runtime import build_tool_server_app
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.models import CheckSpec
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.agents.mesh import running_agent
from tests.support.live import free_port, serve
from tests.support.polling import eventually

__all__ = [
    "CHECK",
    "McpMesh",
    "gateway_with_mcp",
    "listed",
    "running_mcp_mesh",
    "tool_server",
]

#: Fast probes: instances are passing soon after they start.
CHECK = CheckSpec(ttl_seconds=10, interval_seconds=0.5, deregister_critical_after_seconds=60)


@dataclass(frozen=True)
class McpMesh:
    gateway: Gateway
    mount: McpMount
    #: ``{name: base URL}`` of the gateway (``gateway``), the registry and every peer.
    urls: dict[str, str]
    registry: RegistryClient
    registry_url: str
    http: httpx.AsyncClient

    @property
    def mcp(self) -> str:
        return self.urls["gateway"] + "/mcp"


@contextlib.asynccontextmanager
async def tool_server(
    name: str, factory: Callable[[], Any], registry_url: str
) -> AsyncIterator[str]:
    """A reference tool server serving ``/mcp``, registered as ``name``."""
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):  # the port is free when picked but may be taken before the bind
            port = free_port()
            hosting = HostingConfig(service=name, port=port, registry_url=registry_url, check=CHECK)
            try:
                url = await stack.enter_async_context(
                    serve(build_tool_server_app(factory(), hosting), port=port)
                )
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            else:
                break
        yield url


def gateway_with_mcp(
    settings: GatewaySettings, http: httpx.AsyncClient
) -> tuple[Starlette, McpMount, Gateway]:
    """The gateway app (its ``/mcp`` included), its MCP mount and its parts."""
    app = create_gateway(settings, http=http)
    return app, app.state.mcp, app.state.gateway


@contextlib.asynccontextmanager
async def running_mcp_mesh() -> AsyncIterator[McpMesh]:
    from mcp_servers.calc import create_server as create_calc
    from mcp_servers.knowledge import create_server as create_knowledge

    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10, trust_env=False))
        settings = RegistrySettings(url_policy=UrlPolicy.loopback())
        registry_url = await stack.enter_async_context(serve(create_app(MemoryBackend(), settings)))
        registry = RegistryClient(registry_url, http=http)
        urls = {"registry": registry_url}
        for name, factory in (("calc", create_calc), ("knowledge", create_knowledge)):
            urls[name] = await stack.enter_async_context(tool_server(name, factory, registry_url))
        urls["calculator"] = await stack.enter_async_context(
            running_agent(
                calculator,
                tools=MeshTools(registry, http=http, gateway_url=None),
                registry_url=registry_url,
                check=CHECK,
            )
        )
        host, mount, gateway = gateway_with_mcp(
            GatewaySettings(registry_url=registry_url, watch_wait=5), http
        )
        urls["gateway"] = await stack.enter_async_context(serve(host))
        yield McpMesh(gateway, mount, urls, registry, registry_url, http)


async def listed(mesh: McpMesh, expected: set[str], within: float = 15) -> None:
    """Wait until ``/mcp`` lists every tool in ``expected`` (the mesh's routes settle)."""
    async with Client(mesh.mcp, mode="2026-07-28", cache=None) as client:

        async def names() -> set[str]:
            return {t.name for t in (await client.list_tools()).tools}

        await eventually(names, expected.issubset, within=within)
