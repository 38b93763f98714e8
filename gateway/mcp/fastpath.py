"""The raw fast path of ``/mcp``: stateless 2026-07-28 ``tools/call`` and ``tools/list``.

The SDK server spends about a millisecond of CPU on each request (models in,
models out, a ``tools/list`` to find the schema of each called tool). This path
answers the two hot methods of the stateless era from the JSON itself:

* ``tools/call`` of an upstream tool: ``params.name`` becomes the upstream's
  name (id, arguments and ``_meta`` stay the caller's; the current span's
  ``traceparent`` joins ``_meta`` when tracing is on), the request goes
  through the forwarder (balancer, retries, ejection) and the upstream's
  answer is relayed: JSON as it came, SSE as its one JSON-RPC response.
* ``tools/list``: bytes built once per route table (per policy rule when a
  tool policy is set: a handful of rules, not one list per caller), with the
  ``ttlMs`` hint the SDK path gives (:mod:`~gateway.mcp.lists`).

The checks run first and are the SDK's own (Host/Origin, Content-Type,
Accept, the request envelope, duplicated routing headers, the version
ladder). Whatever this path does not answer -- a failed check, another method
or era, skills and mesh tools, tools whose schema binds ``Mcp-Param-*``
headers, unknown or refused tools -- goes to the SDK server with the body
replayed, so errors and everything else behave exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.runner import modern_error_data
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp_types.methods import serialize_server_result
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.asgi import read_body, send_body
from gateway.errors import PayloadTooLarge
from gateway.mcp.cache import cache_key
from gateway.mcp.catalog import Catalog, Entry
from gateway.mcp.lists import ToolLists
from gateway.mcp.policy import ToolPolicy, request_principal
from gateway.mcp.upstream import (
    MCP_VERSION,
    Upstream,
    compact,
    error_result,
    read_answer,
    traced_meta,
)
from gateway.telemetry import route_span

__all__ = ["FastPath"]

_VERSION = MCP_VERSION.encode()
_JSON = [(b"content-type", b"application/json")]
_METHODS = frozenset(("tools/call", "tools/list"))
#: The SDK transport's own limit (``max_request_body_size``); the gateway's is lower.
_MAX_BODY = 4 * 1024 * 1024


class FastPath:
    """An ASGI app for ``/mcp`` that answers what it can and hands the rest to ``fallback``."""

    def __init__(
        self,
        *,
        server: Server[Any],
        catalog: Callable[[], Catalog],
        upstream: Upstream,
        security: TransportSecuritySettings,
        lists: ToolLists,
        policy: ToolPolicy | None,
        fallback: ASGIApp,
    ) -> None:
        self.server = server
        self.fallback = fallback
        self._catalog = catalog
        self._upstream = upstream
        self._security = TransportSecurityMiddleware(security)
        self._lists = lists
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _modern(scope):
            await self.fallback(scope, receive, send)
            return
        request = Request(scope)
        # Content-Type, Host and Origin: the SDK's checks; a refusal is the SDK's to send.
        if await self._security.validate_request(request, is_post=True) is not None:
            await self.fallback(scope, receive, send)
            return
        if check_accept_headers(request) != (True, True):
            await self.fallback(scope, receive, send)
            return
        try:
            body = await read_body(receive, _MAX_BODY)
        except PayloadTooLarge:
            await send_body(send, 413, [], b"Request body too large")  # as the SDK says it
            return
        if not await self._serve(scope, request, body, send):
            await self.fallback(scope, _replay(body, receive), send)

    async def _serve(self, scope: Scope, request: Request, body: bytes, send: Send) -> bool:
        """Answer the request and return True, or return False having sent nothing."""
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return False
        if not isinstance(message, dict) or message.get("method") not in _METHODS:
            return False
        try:
            types.JSONRPCRequest.model_validate(message)
        except ValidationError:
            return False
        if find_duplicated_routing_header(request.headers.items()) is not None:
            return False
        verdict = classify_inbound_request(message, headers=dict(request.headers))
        if isinstance(verdict, InboundLadderRejection):
            return False
        params: dict[str, Any] = message["params"]  # the ladder proved it is an object
        principal = request_principal(scope)
        catalog = self._catalog()
        if message["method"] == "tools/list":
            if params.get("cursor") is not None:
                return False
            await self._send_result(send, message["id"], self._lists.wire(MCP_VERSION, principal))
            return True
        name = params.get("name")
        if not isinstance(name, str):
            return False
        entry = catalog.entries.get(name)
        if entry is None or entry.kind != "tool" or entry.param_headers:
            return False
        if self._policy is not None and not self._policy.allows(principal, name):
            return False  # refused: the SDK path answers it as an unknown tool
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            return False
        with route_span(_trace_carrier(scope, params["_meta"]), "mcp", name, "POST"):
            await self._call(send, message, params, name, entry, arguments)
        return True

    async def _call(
        self,
        send: Send,
        message: dict[str, Any],
        params: dict[str, Any],
        name: str,
        entry: Entry,
        arguments: dict[str, Any],
    ) -> None:
        request_id = message["id"]
        cache = self._upstream.cache if entry.cacheable else None
        key = None
        if cache is not None:
            key = cache_key(entry.service, entry.name, arguments)
            cached = await cache.get(name, key)
            if cached is not None:
                await self._send_result(send, request_id, cached)
                return
        forwarded = {
            **message,
            "params": {**params, "name": entry.name, "_meta": traced_meta(dict(params["_meta"]))},
        }
        raw, content_type = await self._upstream.post_tool(
            entry.service, entry.name, entry.path, compact(forwarded)
        )
        if raw is None:
            await self._send_result(send, request_id, self._sdk_result(error_result(content_type)))
            return
        answer = read_answer(entry.service, raw, content_type, request_id)
        if answer.error is not None:
            error = types.JSONRPCError(
                jsonrpc="2.0", id=request_id, error=modern_error_data(answer.error)
            )
            status = ERROR_CODE_HTTP_STATUS.get(error.error.code, 200)
            await send_body(send, status, _JSON, compact(_dump(error)))
            return
        if answer.result is None:
            failed = error_result(answer.failure or f"{entry.service} failed")
            await self._send_result(send, request_id, self._sdk_result(failed))
            return
        result = None
        if key is not None and cache is not None and answer.result.get("isError") is not True:
            result = compact(answer.result)
            await cache.put(key, result)
        if answer.raw is not None:
            await send_body(send, 200, _JSON, answer.raw)
        else:
            await self._send_result(send, request_id, result or compact(answer.result))

    def _sdk_result(self, result: BaseModel) -> bytes:
        """``result`` on the wire as the SDK server shapes it for a 2026-07-28 client."""
        dumped = serialize_server_result("tools/call", MCP_VERSION, _dump(result))
        dumped["_meta"] = {types.SERVER_INFO_META_KEY: self.server.server_info_stamp}
        return compact(dumped)

    @staticmethod
    async def _send_result(send: Send, request_id: Any, result: bytes) -> None:
        head = b'{"jsonrpc":"2.0","id":' + compact(request_id) + b',"result":'
        await send_body(send, 200, _JSON, head + result + b"}")


def _modern(scope: Scope) -> bool:
    """One ``MCP-Protocol-Version`` header, naming 2026-07-28."""
    found = None
    for name, value in scope["headers"]:
        if name == b"mcp-protocol-version":
            if found is not None:
                return False
            found = value
    return found == _VERSION


def _trace_carrier(scope: Scope, meta: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """Where the caller's trace context is: MCP's ``params._meta`` first (as the SDK
    server reads it), else the HTTP headers."""
    parent = meta.get("traceparent")
    if not isinstance(parent, str):
        return scope["headers"]  # type: ignore[no-any-return]
    carrier = [(b"traceparent", parent.encode("latin-1", "replace"))]
    state = meta.get("tracestate")
    if isinstance(state, str):
        carrier.append((b"tracestate", state.encode("latin-1", "replace")))
    return carrier


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` again, then whatever the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
