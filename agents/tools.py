"""Calling the mesh's MCP tools: :class:`MeshTools` implements :class:`~agents.sdk.ToolCaller`.

Each call is one self-contained JSON-RPC POST in the stateless 2026-07-28
protocol (no initialize, no session): the headers ``MCP-Protocol-Version``,
``Mcp-Method`` and ``Mcp-Name``, and ``params._meta`` with the protocol
version, client info and capabilities, plus W3C trace context (in the headers
and in ``_meta``). The calls go to the gateway's ``/mcp`` as
``{service}__{tool}`` when a gateway is configured, else to a passing instance
of the service at its registered MCP URL.

Measured on a warm loopback call: ~1.1 ms per call this way over a pooled
``httpx`` client, ~1.7 ms through a long-lived ``mcp.Client``, ~21 ms when a
client is opened per call; the SDK client also needs ``httpx2``, a second
pool beside the injected one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
from opentelemetry import propagate, trace

from agents.errors import NoPeer, PeerTimeout, PeerUnavailable, ToolFailed
from agents.sdk import ToolResult
from registry.client import RegistryClient
from registry.errors import RegistryError
from registry.models import Kind

__all__ = ["MCP_VERSION", "MeshTools"]

#: The stateless MCP protocol version every call uses.
MCP_VERSION = "2026-07-28"
_META = "io.modelcontextprotocol/"
_MAX_ANSWER_BYTES = 8 * 1024 * 1024
_tracer = trace.get_tracer("meshgate.agents")


class MeshTools:
    """Calls tools of the mesh's MCP servers; see the module docstring for the route.

    ``http`` is the caller's client; ``timeout`` bounds one whole call.
    """

    def __init__(
        self,
        registry: RegistryClient,
        *,
        http: httpx.AsyncClient,
        gateway_url: str | None,
        timeout: float = 30.0,
        client_name: str = "meshgate-agent",
        client_version: str = "0.1.0",
    ) -> None:
        self._registry = registry
        self._http = http
        self._gateway = gateway_url.rstrip("/") if gateway_url else None
        self._timeout = timeout
        self._client_info = {"name": client_name, "version": client_version}
        self._ids = itertools.count(1)
        self._turns: dict[str, itertools.count[int]] = {}

    async def call(self, service: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Call ``tool`` of ``service`` with ``arguments``; a tool's own error is ``is_error``."""
        with _tracer.start_as_current_span("mesh.tool") as span:
            span.set_attribute("mesh.service", service)
            span.set_attribute("mesh.tool", tool)
            try:
                with anyio.fail_after(self._timeout):
                    url, name = await self._route(service, tool)
                    result = await self._post(url, name, dict(arguments), service)
            except TimeoutError:
                raise PeerTimeout(
                    f"{service}.{tool} did not answer within {self._timeout:g}s", peer=service
                ) from None
        return _tool_result(result, service, tool)

    async def _route(self, service: str, tool: str) -> tuple[str, str]:
        if self._gateway:
            return f"{self._gateway}/mcp", f"{service}__{tool}"
        try:
            found = await self._registry.instances(service, passing_only=True)
        except RegistryError as exc:
            raise NoPeer(f"cannot look up {service}: {exc.detail}", peer=service) from None
        servers = sorted((i for i in found.value if i.kind == Kind.MCP_SERVER), key=lambda i: i.id)
        if not servers:
            raise NoPeer(f"no passing MCP server {service}", peer=service)
        turn = next(self._turns.setdefault(service, itertools.count()))
        return servers[turn % len(servers)].url, tool

    async def _post(
        self, url: str, name: str, arguments: dict[str, Any], service: str
    ) -> dict[str, Any]:
        trace_context: dict[str, str] = {}
        propagate.inject(trace_context)
        request_id = next(self._ids)
        meta = {
            _META + "protocolVersion": MCP_VERSION,
            _META + "clientInfo": self._client_info,
            _META + "clientCapabilities": {},
            **trace_context,
        }
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": meta},
        }
        headers = {
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": MCP_VERSION,
            "Mcp-Method": "tools/call",
            "Mcp-Name": name,
            **trace_context,
        }
        try:
            async with self._http.stream(
                "POST", url, json=body, headers=headers, timeout=self._timeout
            ) as response:
                answer = await _read_answer(response, request_id)
                status = response.status_code
        except httpx.TimeoutException:
            raise PeerTimeout(f"{service} did not answer in time", peer=service) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            where = _where(url)
            raise PeerUnavailable(
                f"cannot reach {service} at {where}: {reason}", peer=service
            ) from None
        if answer is None:
            raise PeerUnavailable(
                f"{service} answered HTTP {status} without a JSON-RPC response", peer=service
            )
        error = answer.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            raise ToolFailed(
                f"{service} refused {name}: {str(error.get('message', ''))[:200]}",
                peer=service,
                rpc_code=code if isinstance(code, int) else 0,
            )
        result = answer.get("result")
        if not isinstance(result, dict):
            raise PeerUnavailable(f"{service} answered a result that is no object", peer=service)
        return result


async def _read_answer(response: httpx.Response, request_id: int) -> dict[str, Any] | None:
    """The JSON-RPC response to ``request_id``: a JSON body, or an event of an SSE stream."""
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime == "text/event-stream":
        data: list[str] = []
        seen = 0
        async for line in response.aiter_lines():
            seen += len(line)
            if seen > _MAX_ANSWER_BYTES:
                return None
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                message = _json_object("\n".join(data))
                data = []
                # Notifications (progress, logs) may come first; wait for the answer.
                if message is not None and message.get("id") == request_id:
                    return message
        return None
    raw = bytearray()
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) > _MAX_ANSWER_BYTES:
            return None
    return _json_object(bytes(raw))


def _json_object(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tool_result(result: dict[str, Any], service: str, tool: str) -> ToolResult:
    kind = result.get("resultType", "complete")
    if kind != "complete":
        # e.g. input_required: a skill has no user to ask.
        raise ToolFailed(f"{service}.{tool} answered {kind!r}, not a result", peer=service)
    content = result.get("content") or []
    text = "\n".join(
        str(item.get("text", ""))
        for item in content
        if isinstance(item, dict) and item.get("type") == "text"
    )
    return ToolResult(
        text=text,
        structured=result.get("structuredContent"),
        is_error=bool(result.get("isError", False)),
    )


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
