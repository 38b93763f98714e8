"""``meshgate mcp-stdio``: bridge an MCP client on stdio to the gateway's ``/mcp``.

This is what ``claude_desktop_config.json`` launches. Both sides are the mcp SDK's
own transports (``stdio_server`` and ``streamable_http_client``); the bridge only
forwards JSON-RPC messages, both ways, unchanged: requests, responses, errors and
server notifications such as ``notifications/tools/list_changed``. The SDK has no
ready proxy helper for this; what it needs from us is the per-message HTTP headers
its own client session would stamp (``MCP-Protocol-Version`` after the handshake;
``Mcp-Method``/``Mcp-Name`` too for 2026-07-28 requests).

stdout is the protocol: logs go to stderr, and the API key goes only into the
``Authorization`` header of requests to the gateway, never into a log line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any

import anyio
import click
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = ["McpBridge", "mcp_stdio", "run_bridge"]

log = logging.getLogger("meshgate.mcp_stdio")

PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_key(value: str | None) -> str | None:
    """The key itself, or the variable a ``${NAME}`` reference names (what
    ``meshgate claude-config --api-key-env`` writes, for clients that pass env verbatim)."""
    if not value:
        return None
    if (ref := _REFERENCE.fullmatch(value)) is None:
        return value
    key = os.environ.get(ref.group(1))
    if not key:
        raise click.UsageError(f"the API key references ${ref.group(1)}, which is not set")
    return key


def endpoint(gateway: str) -> str:
    """``{gateway}/mcp`` (a URL already ending in ``/mcp`` is taken as is)."""
    url = gateway.rstrip("/")
    return url if url.endswith("/mcp") else url + "/mcp"


class McpBridge:
    """The header bookkeeping of one stdio session: what a client session would stamp."""

    def __init__(self) -> None:
        #: The version the ``initialize`` handshake agreed on (handshake era).
        self.negotiated: str | None = None
        self._initialize_ids: set[str | int] = set()

    def outbound(self, message: SessionMessage) -> SessionMessage:
        """A message from the stdio client, with the HTTP headers it needs attached."""
        inner = message.message
        headers: dict[str, str] = {}
        if isinstance(inner, JSONRPCRequest | JSONRPCNotification):
            params: dict[str, Any] = inner.params or {}
            meta = params.get("_meta")
            version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
            if isinstance(inner, JSONRPCRequest) and inner.method == "initialize":
                self._initialize_ids.add(inner.id)
            elif isinstance(version, str) and version in MODERN_PROTOCOL_VERSIONS:
                headers[MCP_PROTOCOL_VERSION_HEADER] = version
                headers[MCP_METHOD_HEADER] = inner.method
                key = NAME_BEARING_METHODS.get(inner.method)
                if key is not None and isinstance(name := params.get(key), str):
                    headers[MCP_NAME_HEADER] = encode_header_value(name)
            elif self.negotiated is not None:
                headers[MCP_PROTOCOL_VERSION_HEADER] = self.negotiated
        elif self.negotiated is not None:  # responses to server requests, errors
            headers[MCP_PROTOCOL_VERSION_HEADER] = self.negotiated
        if not headers:
            return message
        return SessionMessage(inner, metadata=ClientMessageMetadata(headers=headers))

    def inbound(self, message: SessionMessage) -> SessionMessage:
        """A message from the gateway, passed on unchanged (the handshake's version noted)."""
        inner = message.message
        if isinstance(inner, JSONRPCResponse) and inner.id in self._initialize_ids:
            self._initialize_ids.discard(inner.id)
            version = inner.result.get("protocolVersion")
            if isinstance(version, str):
                self.negotiated = version
        return SessionMessage(inner)


async def run_bridge(
    url: str,
    *,
    api_key: str | None = None,
    stdin: anyio.AsyncFile[str] | None = None,
    stdout: anyio.AsyncFile[str] | None = None,
    http_client: httpx2.AsyncClient | None = None,
) -> None:
    """Forward between stdio and ``url`` until stdin closes."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else None
    client = http_client or create_mcp_http_client(headers=headers)
    bridge = McpBridge()
    async with (
        client,
        stdio_server(stdin, stdout) as (from_stdio, to_stdio),
        streamable_http_client(url, http_client=client) as (from_http, to_http),
        anyio.create_task_group() as tg,
    ):

        async def downstream() -> None:
            """Gateway → stdio client."""
            async with to_stdio:
                async for item in from_http:
                    if isinstance(item, Exception):
                        log.warning("gateway stream error: %s", type(item).__name__)
                        continue
                    await to_stdio.send(bridge.inbound(item))

        tg.start_soon(downstream)
        async with to_http:
            async for item in from_stdio:
                if isinstance(item, Exception):
                    # The SDK's stdio reader hands over lines it could not parse.
                    log.warning("not a JSON-RPC message on stdin: %s", type(item).__name__)
                    continue
                await to_http.send(bridge.outbound(item))
        log.info("stdin closed: the bridge stops")
        tg.cancel_scope.cancel()


@click.command("mcp-stdio")
@click.option(
    "--gateway",
    "gateway_url",
    required=True,
    envvar="MESHGATE_GATEWAY_URL",
    metavar="URL",
    help="The gateway's base URL; the bridge talks to URL/mcp.",
)
@click.option(
    "--api-key",
    envvar="MESHGATE_GATEWAY_API_KEY",
    metavar="KEY",
    help="Bearer key for the gateway (also MESHGATE_GATEWAY_API_KEY; prefer the variable).",
)
def mcp_stdio(gateway_url: str, api_key: str | None) -> None:
    """Bridge an MCP client on stdin/stdout to the gateway's /mcp.

    Claude Desktop launches this (see `meshgate claude-config`). stdout carries
    the protocol only; logs go to stderr. Exits when stdin closes.
    """
    url = endpoint(gateway_url)
    key = resolve_key(api_key)
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--gateway")
    log.info("bridging stdio to %s", url)
    with contextlib.suppress(KeyboardInterrupt):  # interactive use only
        anyio.run(lambda: run_bridge(url, api_key=key))
