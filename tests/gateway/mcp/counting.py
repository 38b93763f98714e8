"""A tool server that counts its calls and records what reaches it, and gateways in front of it.

For the fast-path and result-cache tests: the registry, the ``counter`` tool
server and one or more gateways (each with its own ``McpSettings``), all real
parts on loopback sockets.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.app import GatewaySettings, create_gateway
from gateway.mcp import McpSettings
from gateway.security import AuthSettings
from mcp_servers.hosting import HostingConfig
from mcp_servers.quiet import quiet_server
from mcp_servers.runtime import build_tool_server_app
from registry.backends import MemoryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.gateway.mcp.mesh import CHECK
from tests.support.live import free_port, serve
from tests.support.polling import eventually

__all__ = ["META", "CountingMesh", "counting_mesh", "mcp_headers", "metric", "rpc"]

_PURE = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
TOOLS = {
    "counter__lookup",
    "counter__bump",
    "counter__fails",
    "counter__progress",
    "counter__regional",
}


def counting_server(calls: Counter[str]) -> MCPServer:
    """Tools that count their calls in ``calls`` by ``{tool}:{argument}``."""
    server = quiet_server("counter")

    @server.tool(annotations=_PURE)
    def lookup(key: str) -> dict[str, Any]:
        """Read-only and idempotent: may be cached."""
        calls[f"lookup:{key}"] += 1
        return {"key": key, "calls": calls[f"lookup:{key}"]}

    @server.tool()
    def bump(key: str) -> dict[str, Any]:
        """Not annotated: never cached."""
        calls[f"bump:{key}"] += 1
        return {"key": key, "calls": calls[f"bump:{key}"]}

    @server.tool(annotations=_PURE)
    def fails(key: str) -> str:
        """Read-only and idempotent, but answers an error result (never cached)."""
        calls[f"fails:{key}"] += 1
        raise ToolError(f"no {key}")

    @server.tool()
    def regional(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    ) -> dict[str, str]:
        """Its argument travels in an ``Mcp-Param-Region`` header too."""
        calls[f"regional:{region}"] += 1
        return {"region": region}

    @server.tool(annotations=_PURE)
    async def progress(steps: int, ctx: Context) -> dict[str, int]:
        """Reports progress first, so the answer comes as SSE when a token was given."""
        calls[f"progress:{steps}"] += 1
        for step in range(steps):
            await ctx.report_progress(step + 1, steps)
        return {"steps": steps}

    return server


class BodyRecorder:
    """Keeps the JSON body of every POST that reaches the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[bytes, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        try:
            self.bodies.append(json.loads(body))
        except ValueError:
            self.bodies.append({"unparsed": body.decode("latin-1")})
        self.headers.append(dict(scope["headers"]))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class CountingMesh:
    http: httpx.AsyncClient
    registry_url: str
    counter_url: str
    gateways: list[str]
    apps: list[Starlette]
    recorder: BodyRecorder
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def mcp(self) -> str:
        return self.gateways[0] + "/mcp"

    def tool_calls(self) -> list[dict[str, Any]]:
        return [b for b in self.recorder.bodies if b.get("method") == "tools/call"]


def mcp_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
        "accept": "application/json, text/event-stream",
    }
    if name is not None:
        headers["mcp-name"] = name
    return headers


async def rpc(
    http: httpx.AsyncClient,
    url: str,
    method: str,
    params: dict[str, Any],
    *,
    request_id: Any = 1,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One stateless 2026-07-28 request (raw JSON-RPC over POST)."""
    name = params.get("name") if method == "tools/call" else None
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {"_meta": META, **params},
    }
    sent = {**mcp_headers(method, name), **(headers or {})}
    return await http.post(url, json=body, headers=sent)


async def metric(http: httpx.AsyncClient, gateway: str, name: str, tool: str) -> float:
    """A counter of the gateway's /metrics for one tool (0 when absent)."""
    text = (await http.get(gateway + "/metrics")).text
    prefix = f'{name}{{tool="{tool}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


@contextlib.asynccontextmanager
async def counting_mesh(
    *settings: McpSettings, auth: AuthSettings | None = None, key: str | None = None
) -> AsyncIterator[CountingMesh]:
    """A registry, the ``counter`` tool server, and one gateway per ``settings``
    (with ``auth``; ``key`` is the credential the mesh's own client sends)."""
    async with contextlib.AsyncExitStack() as stack:
        headers = {"authorization": f"Bearer {key}"} if key else None
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=10, trust_env=False, headers=headers)
        )
        registry_url = await stack.enter_async_context(
            serve(create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback())))
        )
        calls: Counter[str] = Counter()
        port = free_port()
        hosting = HostingConfig(
            service="counter", port=port, registry_url=registry_url, check=CHECK
        )
        recorder = BodyRecorder(build_tool_server_app(counting_server(calls), hosting))
        counter_url = await stack.enter_async_context(serve(recorder, port=port))
        gateways, apps = [], []
        for mcp in settings or (McpSettings(),):
            config = GatewaySettings(
                registry_url=registry_url, watch_wait=5, mcp=mcp, auth=auth or AuthSettings()
            )
            app = create_gateway(config, http=http)
            apps.append(app)
            gateways.append(await stack.enter_async_context(serve(app)))
        mesh = CountingMesh(http, registry_url, counter_url, gateways, apps, recorder, calls)
        for gateway in gateways:

            async def names(url: str = gateway) -> set[str]:
                answer = (await rpc(http, url + "/mcp", "tools/list", {})).json()
                return {tool["name"] for tool in answer.get("result", {}).get("tools", [])}

            await eventually(names, TOOLS.issubset, within=15)
        yield mesh
