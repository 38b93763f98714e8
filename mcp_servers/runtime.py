"""The tool-server runtime: one ``MCPServer`` as a Meshgate process.

:func:`build_tool_server_app` serves MCP at ``/mcp`` (both protocol eras),
``/healthz``, ``/readyz`` and ``/metrics``; its lifespan runs the MCP session
manager and keeps the server registered as ``kind: mcp-server`` with its tool
list. :func:`load_tool_server` turns a CLI argument into a server.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from mcp_servers.hosting import (
    HostingConfig,
    HttpMetrics,
    MetricsMiddleware,
    ops_routes,
    registered,
)
from mcp_servers.http import McpHttpSettings, describe_tools, mcp_app
from registry.models import Kind, Registration

__all__ = ["REFERENCE_SERVERS", "build_tool_server_app", "load_tool_server"]

#: Reference tool servers by name: the factory that builds each.
REFERENCE_SERVERS = {
    "knowledge": "mcp_servers.knowledge:create_server",
    "calc": "mcp_servers.calc:create_server",
}


def build_tool_server_app(
    server: MCPServer[Any],
    config: HostingConfig,
    mcp: McpHttpSettings = McpHttpSettings(),  # noqa: B008 - frozen, safe as a default
    *,
    http: httpx.AsyncClient | None = None,
) -> Starlette:
    """A Starlette app serving ``server`` as a tool server, registered while it runs.

    ``http`` is the client self-registration uses (the caller owns it; one is
    made when omitted). The app's lifespan can run once: build a new app to
    serve again. The host of ``config.public_url`` is admitted as a Host header.
    """
    mcp = mcp.admitting(config.public_url)
    mcp_starlette, run_sessions = mcp_app(server, mcp)
    metrics = HttpMetrics()
    ready = False

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal ready
        async with run_sessions():
            registration = None
            if config.registry_url:
                registration = Registration(
                    kind=Kind.MCP_SERVER,
                    url=config.base_url + mcp.path,
                    tools=await describe_tools(server),
                    check=config.check,
                )
            async with _registered(config, registration, http) as registering:
                app.state.registration = registering
                ready = True
                try:
                    yield
                finally:
                    ready = False

    routes: list[BaseRoute] = [*mcp_starlette.routes, *ops_routes(lambda: ready, metrics.registry)]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
    )
    app.state.registration = None
    app.state.metrics = metrics
    app.state.mcp_server = server
    return app


@asynccontextmanager
async def _registered(
    config: HostingConfig, registration: Registration | None, http: httpx.AsyncClient | None
) -> AsyncIterator[Any]:
    if registration is None:
        yield None
        return
    async with registered(config, registration, http=http) as registering:
        yield registering


def load_tool_server(spec: str) -> MCPServer[Any]:
    """A tool server from ``spec``: a reference server's name (``knowledge``, ``calc``)
    or ``package.module:attr`` naming an ``MCPServer`` or a zero-argument factory of one.

    Raises :class:`ValueError` with a message fit for a command line.
    """
    target = REFERENCE_SERVERS.get(spec, spec)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(sorted(REFERENCE_SERVERS))
        raise ValueError(f"{spec!r} is neither a reference server ({known}) nor module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, MCPServer) and callable(obj):
        obj = obj()
    if not isinstance(obj, MCPServer):
        raise ValueError(f"{target!r} is not an MCPServer nor a factory returning one")
    return obj
