"""Active health probes that exercise an instance's own protocol.

A2A: fetch the Agent Card, then make a cheap JSON-RPC call (``GetTask`` of a task
that does not exist) at the card's JSON-RPC interface; any protocol-level answer,
task-not-found included, is healthy. MCP: ``tools/list`` in the stateless
2026-07-28 form, falling back to the handshake era (``initialize``, ``tools/list``
in the session, ``DELETE``) when the server refuses that form. A probe never
raises, never follows redirects, and is bounded by the check's timeout.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from registry.models import Instance, Kind

__all__ = ["A2A_VERSION", "MCP_HANDSHAKE_VERSION", "MCP_MODERN_VERSION", "ProbeResult", "probe"]

A2A_VERSION = "1.0"
MCP_MODERN_VERSION = "2026-07-28"
MCP_HANDSHAKE_VERSION = "2025-11-25"
_MAX_BODY = 4 * 1024 * 1024
_JSON = "application/json"
_ACCEPT_MCP = "application/json, text/event-stream"
#: JSON-RPC errors meaning "this endpoint does not speak A2A 1.0 to us": not a protocol answer.
_A2A_REFUSALS = {
    -32700: "parse error",
    -32600: "invalid request",
    -32601: "method not found",
    -32602: "invalid params",
    -32603: "internal error",
    -32009: "version not supported",
}
_A2A_ANSWERS = {-32001: "TaskNotFoundError", -32004: "UnsupportedOperationError"}
_MCP_UNSUPPORTED_VERSION = -32022

try:
    _VERSION = metadata.version("meshgate")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "0"
_CLIENT_INFO = {"name": "meshgate-registry", "version": _VERSION}


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe; ``output`` is short human text, without URLs or secrets."""

    ok: bool
    output: str


async def probe(http: httpx.AsyncClient, instance: Instance) -> ProbeResult:
    """Probe ``instance`` with its own protocol; never raises (outer cancellation aside)."""
    timeout = instance.check.timeout_seconds
    prober = _Prober(http, timeout)
    try:
        with anyio.fail_after(timeout):
            if instance.kind is Kind.A2A_AGENT:
                return ProbeResult(True, await prober.a2a(instance.url))
            return ProbeResult(True, await prober.mcp(instance.url))
    except _Fail as exc:
        return ProbeResult(False, str(exc))
    except (TimeoutError, httpx.TimeoutException):
        return ProbeResult(False, f"timed out after {timeout:g} s")
    except httpx.ConnectError as exc:
        return ProbeResult(False, _connect_failure(exc))
    except httpx.RemoteProtocolError:
        return ProbeResult(False, "connection closed without a valid HTTP answer")
    except Exception as exc:  # the contract: a probe reports, it does not raise
        return ProbeResult(False, f"probe error: {type(exc).__name__}")


class _Fail(Exception):
    """A probe step failed; the message is the probe's output."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    message: dict[str, Any] | None  # the JSON object answered (a card or a JSON-RPC response)


@dataclass(frozen=True)
class _Prober:
    http: httpx.AsyncClient
    timeout: float

    async def a2a(self, url: str) -> str:
        base = urlsplit(url)._replace(query="", fragment="").geturl().rstrip("/") + "/"
        card = await self.exchange("GET", urljoin(base, ".well-known/agent-card.json"), None, {})
        if card.status != 200:
            raise _Fail(f"HTTP {card.status} from card")
        if card.message is None or not isinstance(card.message.get("name"), str):
            raise _Fail("card has no name" if card.message is not None else "card is not JSON")
        rpc_url, note = _jsonrpc_url(card.message, url)
        body = _jsonrpc("GetTask", {"id": f"meshgate-probe-{uuid.uuid4()}"})
        answer = await self.exchange("POST", rpc_url, body, {"A2A-Version": A2A_VERSION})
        if answer.status >= 500:
            raise _Fail(f"HTTP {answer.status} from JSON-RPC")
        message = _response_to(answer, body["id"], "JSON-RPC")
        code = _error_code(message)
        if "result" in message:
            return f"A2A JSON-RPC answered (result){note}"
        if code is None or code in _A2A_REFUSALS:
            raise _Fail(f"A2A JSON-RPC refused the probe: {code} {_A2A_REFUSALS.get(code or 0)}")
        return f"A2A JSON-RPC answered ({_A2A_ANSWERS.get(code, f'error {code}')}){note}"

    async def mcp(self, url: str) -> str:
        meta = {
            "io.modelcontextprotocol/protocolVersion": MCP_MODERN_VERSION,
            "io.modelcontextprotocol/clientInfo": _CLIENT_INFO,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        body = _jsonrpc("tools/list", {"_meta": meta})
        headers = {"MCP-Protocol-Version": MCP_MODERN_VERSION, "Mcp-Method": "tools/list"}
        answer = await self.exchange("POST", url, body, {"Accept": _ACCEPT_MCP, **headers})
        if answer.status >= 500 or 300 <= answer.status < 400:
            raise _Fail(f"HTTP {answer.status} from MCP endpoint")
        message = (
            answer.message if answer.message and answer.message.get("id") == body["id"] else None
        )
        if answer.status < 300 and message is not None and "result" in message:
            return f"MCP tools/list answered: {_tool_count(message)} tools ({MCP_MODERN_VERSION})"
        if message is not None and _error_code(message) == _MCP_UNSUPPORTED_VERSION:
            data = message["error"].get("data")
            supported = data.get("supported") if isinstance(data, dict) else None
            if isinstance(supported, list) and not any(map(_is_handshake, supported)):
                raise _Fail(f"MCP server supports none of our versions: {supported!r:.80}")
        elif answer.status < 400 and message is None:
            raise _Fail(f"MCP endpoint answered HTTP {answer.status} without a JSON-RPC response")
        return await self.mcp_handshake(url)  # refused (4xx or JSON-RPC error): older era?

    async def mcp_handshake(self, url: str) -> str:
        info = {"protocolVersion": MCP_HANDSHAKE_VERSION, "capabilities": {}}
        body = _jsonrpc("initialize", {**info, "clientInfo": _CLIENT_INFO})
        headers = {"Accept": _ACCEPT_MCP}
        init = await self.post(url, body, headers, "initialize")
        result = _response_to(init, body["id"], "MCP initialize").get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if not isinstance(version, str):
            raise _Fail(f"MCP initialize refused ({_error_code(init.message or {})})")
        headers["MCP-Protocol-Version"] = version
        if session := init.headers.get("mcp-session-id"):
            headers["Mcp-Session-Id"] = session
        try:
            await self.post(url, _jsonrpc("notifications/initialized"), headers, "initialized")
            body = _jsonrpc("tools/list")
            message = _response_to(
                await self.post(url, body, headers, "tools/list"), body["id"], "MCP tools/list"
            )
            return f"MCP tools/list answered: {_tool_count(message)} tools (handshake {version})"
        finally:
            if session:  # best effort: a server may answer 405 (no client termination)
                with contextlib.suppress(httpx.HTTPError):
                    await self.http.delete(
                        url, headers=headers, timeout=self.timeout, follow_redirects=False
                    )

    async def post(
        self, url: str, body: dict[str, Any], headers: dict[str, str], step: str
    ) -> _Answer:
        answer = await self.exchange("POST", url, body, headers)
        if answer.status >= 300:
            raise _Fail(f"HTTP {answer.status} from MCP {step}")
        return answer

    async def exchange(
        self, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> _Answer:
        """One request; its JSON object, or the first JSON-RPC response of an SSE stream."""
        content = None if body is None else json.dumps(body).encode()
        headers = {"Accept": _JSON, **headers}
        if content is not None:
            headers["Content-Type"] = _JSON
        request = self.http.build_request(
            method, url, content=content, headers=headers, timeout=self.timeout
        )
        response = await self.http.send(request, stream=True, follow_redirects=False)
        try:
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if mime == "text/event-stream":
                message = await _first_sse_response(response)
            else:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > _MAX_BODY:
                        raise _Fail(f"answer larger than {_MAX_BODY} bytes")
                message = _decode(bytes(raw))
        finally:
            await response.aclose()
        return _Answer(response.status_code, response.headers, message)


def _jsonrpc_url(card: dict[str, Any], instance_url: str) -> tuple[str, str]:
    """The card's JSON-RPC URL if on the instance's own origin, else the instance URL."""
    for iface in card.get("supportedInterfaces") or []:
        if isinstance(iface, dict) and iface.get("protocolBinding") == "JSONRPC":
            found = iface.get("url")
            if isinstance(found, str) and _origin(found) == _origin(instance_url):
                return found, ""
            # Never point the registry at a host it did not validate: probe the instance.
            return instance_url, "; card's JSON-RPC URL is elsewhere, probed the instance URL"
    return instance_url, "; card names no JSON-RPC interface, probed the instance URL"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


def _connect_failure(exc: BaseException | None) -> str:
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError):
            return "connect refused"
        exc = exc.__cause__ or exc.__context__
    return "connect failed"


def _jsonrpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request (or, for ``notifications/...``, a notification) with a fresh id."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if not method.startswith("notifications/"):
        body["id"] = str(uuid.uuid4())
    return body if params is None else {**body, "params": params}


def _tool_count(message: dict[str, Any]) -> int:
    result = message.get("result")
    tools = result.get("tools") if isinstance(result, dict) else None
    if not isinstance(tools, list):
        raise _Fail(f"MCP tools/list answered without a tools list ({_error_code(message)})")
    return len(tools)


def _is_handshake(version: object) -> bool:
    return isinstance(version, str) and "2024-11-05" <= version <= MCP_HANDSHAKE_VERSION


def _error_code(message: dict[str, Any]) -> int | None:
    error = message.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def _response_to(answer: _Answer, request_id: str, what: str) -> dict[str, Any]:
    message = answer.message
    if message is None:
        raise _Fail(f"{what} answered non-JSON (HTTP {answer.status})")
    if message.get("jsonrpc") != "2.0" or message.get("id") != request_id:
        raise _Fail(f"{what} answered JSON that is not a JSON-RPC response to the probe")
    if "result" not in message and _error_code(message) is None:
        raise _Fail(f"{what} answered JSON-RPC with neither a result nor an error")
    return message


async def _first_sse_response(response: httpx.Response) -> dict[str, Any] | None:
    data: list[str] = []
    size = 0
    async for line in response.aiter_lines():
        size += len(line) + 1
        if size > _MAX_BODY:
            raise _Fail(f"answer larger than {_MAX_BODY} bytes")
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            message, data = _decode("\n".join(data).encode()), []
            if message is not None and ("result" in message or "error" in message):
                return message
    return _decode("\n".join(data).encode()) if data else None


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
