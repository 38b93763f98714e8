"""Calls ``/mcp`` makes upstream, all through the gateway's forwarder (balancer,
retries, outlier ejection): a tool's ``tools/call`` and an agent's ``SendMessage``.

A tool call is one stateless 2026-07-28 JSON-RPC POST: the caller's arguments
and ``_meta`` with ``params.name`` rewritten to the upstream's tool name, the
headers ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name``. The answer
(JSON, or SSE whose event carries the response) becomes the ``CallToolResult``.
A failure upstream is an ``isError`` result naming it; a protocol error of the
upstream (unknown tool, bad arguments) is passed on as the same JSON-RPC error.
Results of cacheable tools go through the :mod:`~gateway.mcp.cache` when one is
given. :func:`read_answer` is shared with the raw fast path (:mod:`~gateway.mcp.fastpath`).

An instance that refuses the stateless era (an older SDK) is remembered and
reached over a pooled handshake-era session (:mod:`~gateway.mcp.legacy`); its
answer is shaped as the stateless response it stands for, so both paths read it
the same way.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import encode_header_value, mcp_param_headers
from opentelemetry import propagate
from pydantic import ValidationError

from gateway.errors import GatewayError
from gateway.forwarding import Forwarder, Target
from gateway.mcp.cache import ResultCache, cache_key
from gateway.mcp.legacy import LegacySessions, refuses_stateless
from gateway.proxy import UpstreamError
from gateway.rest import task_result
from gateway.router import NoRoute
from gateway.table import Route
from gateway.telemetry import tracing_enabled
from registry.models import InstanceKey

__all__ = ["MCP_VERSION", "ToolAnswer", "Upstream", "compact", "error_result", "read_answer"]

MCP_VERSION = "2026-07-28"
logger = logging.getLogger("meshgate.gateway.mcp")

_META = "io.modelcontextprotocol/"
_CLIENT = {"name": "meshgate-gateway", "version": "0.1.0"}
_MAX_ANSWER = 16 << 20
_BASE_HEADERS = (
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
    (b"mcp-protocol-version", MCP_VERSION.encode()),
    (b"mcp-method", b"tools/call"),
)
_A2A_HEADERS = [(b"content-type", b"application/json"), (b"a2a-version", b"1.0")]


def refused_stateless(status: int, raw: bytes, body: bytes) -> bool:
    """:func:`refuses_stateless` for the request ``body`` we sent."""
    if status != 400:
        return False
    try:
        request_id = json.loads(body).get("id")
    except (ValueError, AttributeError):
        return False
    return refuses_stateless(status, raw, request_id)


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def traced_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the current span's W3C context (``traceparent``) when tracing is on."""
    if tracing_enabled():
        propagate.inject(meta)
    return meta


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """An upstream's answer to ``tools/call``: exactly one of the three is set."""

    #: A complete result object, and the response it came in when that was plain JSON.
    result: dict[str, Any] | None = None
    raw: bytes | None = None
    #: The upstream's JSON-RPC error, as ``/mcp`` passes it on.
    error: MCPError | None = None
    #: What went wrong instead (an ``isError`` result says it).
    failure: str | None = None


def read_answer(service: str, raw: bytes, content_type: str, request_id: Any) -> ToolAnswer:
    """Make sense of an upstream's body (JSON or SSE) answering ``tools/call``."""
    sse = content_type.split(";")[0].strip().lower() == "text/event-stream"
    answer = _sse_answer(raw, request_id) if sse else _object(raw)
    if answer is None:
        return ToolAnswer(failure=f"{service} answered no JSON-RPC response to tools/call")
    error = answer.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        message = str(error.get("message") or "error")[:500]
        code = code if isinstance(code, int) and not isinstance(code, bool) else -32603
        return ToolAnswer(error=MCPError(code, f"{service}: {message}"))
    result = answer.get("result")
    if not isinstance(result, dict):
        return ToolAnswer(failure=f"{service} answered a result that is no object")
    kind = result.get("resultType", "complete")
    if kind != "complete":
        return ToolAnswer(failure=f"{service} answered {kind!r}, which /mcp does not relay yet")
    return ToolAnswer(result=result, raw=None if sse else raw)


class Upstream:
    """Sends tool calls and skill messages to healthy instances."""

    def __init__(
        self,
        forwarder: Forwarder,
        cache: ResultCache | None = None,
        legacy: LegacySessions | None = None,
        *,
        legacy_timeout: float = 60.0,
    ) -> None:
        self._forwarder = forwarder
        self._ids = itertools.count(1)
        self.cache = cache
        self.legacy = legacy
        self.legacy_timeout = legacy_timeout
        #: Instances that refused a stateless call: reached through ``legacy``.
        self._handshake_only: set[InstanceKey] = set()

    async def call_tool(
        self,
        service: str,
        tool: str,
        path: str | None,
        arguments: Mapping[str, Any],
        meta: Mapping[str, Any] | None,
        *,
        cache_as: str | None = None,
        param_headers: tuple[tuple[tuple[str, ...], str], ...] = (),
    ) -> types.CallToolResult:
        """Call ``tool`` of ``service``; ``cache_as`` (the public name) lets the cache answer.

        ``param_headers`` (the tool's ``x-mcp-header`` bindings) become the
        ``Mcp-Param-*`` headers the upstream checks against the arguments.
        """
        key = None
        if cache_as is not None and self.cache is not None:
            key = cache_key(service, tool, arguments)
            cached = await self.cache.get(cache_as, key)
            if cached is not None:
                try:
                    return types.CallToolResult.model_validate_json(cached)
                except ValidationError:
                    pass  # not written by this code: ask upstream
        request_id = next(self._ids)
        params_meta = {
            **(meta or {}),
            _META + "protocolVersion": MCP_VERSION,
            _META + "clientInfo": _CLIENT,
            _META + "clientCapabilities": {},
        }
        body = compact(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {
                    "name": tool,
                    "arguments": dict(arguments),
                    "_meta": traced_meta(params_meta),
                },
            }
        )
        extra = mcp_param_headers(dict(param_headers), arguments) if param_headers else {}
        raw, content_type = await self.post_tool(service, tool, path, body, extra)
        if raw is None:
            return error_result(content_type)
        answer = read_answer(service, raw, content_type, request_id)
        if answer.error is not None:
            raise answer.error
        if answer.result is None:
            return error_result(answer.failure or f"{service} failed")
        try:
            result = types.CallToolResult.model_validate(answer.result)
        except ValidationError:
            return error_result(f"{service} answered a malformed tool result")
        if key is not None and self.cache is not None and not result.is_error:
            await self.cache.put(key, compact(answer.result))
        return result

    async def post_tool(
        self,
        service: str,
        tool: str,
        path: str | None,
        body: bytes,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[bytes | None, str]:
        """POST a 2026-07-28 ``tools/call`` of ``tool``; the body and content type, or None."""
        headers = [*_BASE_HEADERS, (b"mcp-name", encode_header_value(tool).encode())]
        if extra:
            headers.extend((k.lower().encode(), v.encode()) for k, v in extra.items())
        target = Target(service=service)
        if self.legacy is None:
            return await self._exchange(target, path, headers, body)
        route = self._handshake_only_route(service)
        if route is not None:
            return await self._via_session(route, path, body)
        refused: list[Route] = []
        raw, detail = await self._exchange(target, path, headers, body, refused)
        if refused:
            self._remember_handshake_only(refused[0].key)
            return await self._via_session(refused[0], path, body)
        return raw, detail

    def _handshake_only_route(self, service: str) -> Route | None:
        """An instance to reach by session, when every routable one of ``service`` needs it."""
        if not self._handshake_only:
            return None
        router = self._forwarder.router
        routes = router.table().routes(service)
        if not routes or any(r.key not in self._handshake_only for r in routes):
            return None
        try:
            return router.pick(service=service)
        except NoRoute:
            return None

    def _remember_handshake_only(self, key: InstanceKey) -> None:
        if len(self._handshake_only) >= 4_096:  # forget instances that left the table
            table = self._forwarder.router.table()
            self._handshake_only = {
                k for k in self._handshake_only if any(r.key == k for r in table.routes(k[0]))
            }
        self._handshake_only.add(key)

    async def _via_session(
        self, route: Route, path: str | None, body: bytes
    ) -> tuple[bytes | None, str]:
        """The stateless request ``body`` sent as a call on a pooled handshake-era session,
        answered as the JSON-RPC response a stateless upstream would have sent."""
        assert self.legacy is not None
        request = json.loads(body)
        params = request["params"]
        meta = {k: v for k, v in (params.get("_meta") or {}).items() if not k.startswith(_META)}
        url = route.endpoint if path is None else route.base_url + path
        upstreams = self._forwarder.router.upstreams
        upstreams.begin(route.key)
        ok = False
        try:
            result = await self.legacy.call_tool(
                url, params["name"], params.get("arguments"), meta, self.legacy_timeout
            )
            ok = True
        except MCPError as error:
            ok = True  # a protocol answer: the instance is healthy
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
            answer["error"] = {"code": error.error.code, "message": error.error.message}
            return compact(answer), "application/json"
        except Exception as exc:
            logger.info("session call to %s failed: %r", url, exc)
            return None, f"{route.service} failed while answering"
        finally:
            self._forwarder.settle(route, ok=ok)
        dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return compact(
            {"jsonrpc": "2.0", "id": request["id"], "result": dumped}
        ), "application/json"

    async def send_message(
        self, target: Target, text: str, skill: str | None, context_id: str | None
    ) -> types.CallToolResult:
        """One A2A ``SendMessage`` (blocking); the finished task as a tool result."""
        message: dict[str, Any] = {
            "messageId": str(uuid.uuid4()),
            "role": "ROLE_USER",
            "parts": [{"text": text}],
        }
        if skill:
            message["metadata"] = {"skill": skill}
        if context_id:
            message["contextId"] = context_id
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}},
            separators=(",", ":"),
        ).encode()
        raw, detail = await self._exchange(target, None, _A2A_HEADERS, body)
        if raw is None:
            return error_result(detail)
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            answer = None
        label = target.label
        if not isinstance(answer, dict):
            return error_result(f"{label} answered something that is not JSON-RPC")
        if isinstance(answer.get("error"), dict):
            said = str(answer["error"].get("message") or "error")[:500]
            return error_result(f"{label} refused the message: {said}")
        result = answer.get("result") or {}
        if isinstance(result.get("task"), dict):
            outcome = task_result(result["task"])
        else:
            parts = (result.get("message") or {}).get("parts") or []
            text_out = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
            outcome = {"state": "completed", "text": text_out, "data": None}
        failed = outcome["state"] != "completed"
        shown = outcome.get("error") if failed else outcome["text"]
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=str(shown or outcome["state"]))],
            structured_content={k: v for k, v in outcome.items() if v is not None},
            is_error=failed,
        )

    async def _exchange(
        self,
        target: Target,
        path: str | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        refused: list[Route] | None = None,
    ) -> tuple[bytes | None, str]:
        """The upstream's body and content type, or ``None`` and what went wrong.

        With ``refused``, an instance that answered "not in the stateless era"
        (:func:`~gateway.mcp.legacy.refuses_stateless`) is appended to it.
        """
        try:
            exchange = await self._forwarder.send(
                target, b"POST", path, list(headers), body, idempotent=False
            )
        except GatewayError as error:
            return None, f"{target.label}: {error.detail}"
        response = exchange.response
        content_type = next((v for k, v in response.headers if k == b"content-type"), b"")
        try:
            raw = await response.read(_MAX_ANSWER)
        except UpstreamError:
            await exchange.finish(ok=False)
            return None, f"{target.label} failed while answering"
        await exchange.finish()
        if refused is not None and refused_stateless(response.status, raw, body):
            refused.append(exchange.route)
            return None, f"{target.label} speaks only the handshake versions"
        if response.status >= 500 or (response.status >= 400 and not raw):
            return None, f"{target.label} answered HTTP {response.status}"
        return raw, content_type.decode("latin-1")


def _sse_answer(raw: bytes, request_id: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to ``request_id`` in an SSE stream."""
    for event in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(
            line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")
        )
        message = _object(data) if data else None
        if message is not None and message.get("id") == request_id:
            return message
    return None


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
