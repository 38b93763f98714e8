"""The gateway's exception family, the one table that maps it to the wire, renderers.

Every error the gateway itself produces (as opposed to an upstream's answer,
which is forwarded as it is) is a :class:`GatewayError`. Plain HTTP routes get
RFC 9457 problem details; JSON-RPC routes (``POST /mcp``, ``POST /a2a/{agent}``,
``POST /a2a/skills/{skill}``) get a JSON-RPC error object.

JSON-RPC responses keep the HTTP status of the table (401, 413, 429, 503, ...)
rather than 200: these errors happen at the transport, before any JSON-RPC
dispatch. The MCP authorization spec and the A2A spec put authentication
failures on HTTP 401/403 (clients start their auth flows from the status);
the MCP client reads a JSON-RPC error body at any non-2xx status when it is
``application/json``; and ``Retry-After`` on 429/503 is understood by HTTP
retry logic, load balancers and metrics only next to a real status.

JSON-RPC codes for gateway errors lie outside the reserved range
-32768..-32000, because both protocols allocate codes inside it (A2A uses
-32001..-32009 for task errors, MCP reserves -32020..-32099): a gateway 401
reported as -32001 would reach an A2A client as ``TaskNotFoundError``. The
code is ``-31000 - status``; malformed requests use the standard -32600 and
internal errors -32603.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

__all__ = [
    "ERROR_TABLE",
    "REALM",
    "BadRequest",
    "Forbidden",
    "GatewayError",
    "MisdirectedRequest",
    "NoHealthyUpstream",
    "NotFound",
    "Overloaded",
    "ParseError",
    "PayloadTooLarge",
    "RateLimited",
    "Unauthorized",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "error_response",
    "handle_exception",
    "is_jsonrpc_route",
    "jsonrpc_error",
    "jsonrpc_response",
    "problem_response",
    "send_error",
]

#: The realm of every ``WWW-Authenticate`` challenge.
REALM = "meshgate"

Headers = list[tuple[bytes, bytes]]
RequestId = str | int | None
BearerError = Literal["invalid_request", "invalid_token"]


class GatewayError(Exception):
    """Base of every error the gateway reports; itself the generic 500."""

    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"
    default_detail: ClassVar[str] = "the gateway could not complete the request"

    def __init__(self, detail: str | None = None, *, retry_after: float | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)
        #: Seconds after which a retry may succeed (sent as ``Retry-After``).
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code][0]

    @property
    def jsonrpc_code(self) -> int:
        return ERROR_TABLE[self.code][1]

    def headers(self) -> Headers:
        """Headers due with this error (``Retry-After``; challenges in subclasses)."""
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, math.ceil(self.retry_after))).encode())]


class BadRequest(GatewayError):
    code = "bad-request"
    title = "Bad request"
    default_detail = "the request could not be read"


class ParseError(BadRequest):
    """The body of a JSON-RPC request is not JSON (JSON-RPC's own -32700)."""

    code = "parse-error"
    title = "Parse error"
    default_detail = "the body is not JSON"


class Unauthorized(GatewayError):
    """No or bad credentials. ``error`` is RFC 6750's code, never the failed check."""

    code = "unauthorized"
    title = "Unauthorized"
    default_detail = "authentication is required"

    def __init__(self, detail: str | None = None, *, error: BearerError | None = None) -> None:
        if detail is None and error is not None:
            detail = "the credentials are not valid"
        super().__init__(detail)
        self.error = error

    def headers(self) -> Headers:
        challenge = f'Bearer realm="{REALM}"'
        if self.error is not None:
            challenge += f', error="{self.error}"'
        return [(b"www-authenticate", challenge.encode())]


class Forbidden(GatewayError):
    code = "forbidden"
    title = "Forbidden"
    default_detail = "the request is not allowed"


class NotFound(GatewayError):
    """Both "no such resource" and "you may not see it": identical on the wire."""

    code = "not-found"
    title = "Not found"
    default_detail = "no such resource"


class MisdirectedRequest(GatewayError):
    """The Host (or Origin) is not one this gateway answers for (DNS rebinding)."""

    code = "misdirected"
    title = "Misdirected request"
    default_detail = "this gateway does not serve that host"


class PayloadTooLarge(GatewayError):
    code = "payload-too-large"
    title = "Payload too large"
    default_detail = "the request body is larger than this gateway accepts"


class RateLimited(GatewayError):
    code = "rate-limited"
    title = "Too many requests"
    default_detail = "the rate limit of this caller is exhausted"


class UpstreamUnavailable(GatewayError):
    code = "upstream-unavailable"
    title = "Bad gateway"
    default_detail = "the upstream could not be reached or failed"


class Overloaded(GatewayError):
    code = "overloaded"
    title = "Overloaded"
    default_detail = "the gateway is at capacity"


class NoHealthyUpstream(GatewayError):
    code = "no-healthy-upstream"
    title = "No healthy upstream"
    default_detail = "no healthy instance can take the request"


class UpstreamTimeout(GatewayError):
    code = "upstream-timeout"
    title = "Gateway timeout"
    default_detail = "the upstream did not answer in time"


def _rpc(status: int) -> int:
    return -31000 - status


#: code -> (HTTP status, JSON-RPC error code). The one table.
ERROR_TABLE: dict[str, tuple[int, int]] = {
    BadRequest.code: (400, -32600),
    ParseError.code: (400, -32700),
    Unauthorized.code: (401, _rpc(401)),
    Forbidden.code: (403, _rpc(403)),
    NotFound.code: (404, _rpc(404)),
    MisdirectedRequest.code: (421, _rpc(421)),
    PayloadTooLarge.code: (413, _rpc(413)),
    RateLimited.code: (429, _rpc(429)),
    UpstreamUnavailable.code: (502, _rpc(502)),
    Overloaded.code: (503, _rpc(503)),
    NoHealthyUpstream.code: (503, _rpc(503)),
    UpstreamTimeout.code: (504, _rpc(504)),
    GatewayError.code: (500, -32603),
}

_COMMON: Headers = [(b"cache-control", b"no-store")]


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate (an id a caller spelled "\ud800") has no UTF-8: escape it.
        return json.dumps(body, separators=(",", ":")).encode()


def _headers(error: GatewayError, content_type: bytes, body: bytes) -> Headers:
    return [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *_COMMON,
        *error.headers(),
    ]


def problem_response(error: GatewayError) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` of RFC 9457 problem details for ``error``."""
    problem: dict[str, Any] = {
        "type": f"urn:meshgate:error:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if error.retry_after is not None:
        problem["retry_after"] = max(1, math.ceil(error.retry_after))
    body = _dumps(problem)
    return error.status, _headers(error, b"application/problem+json", body), body


def jsonrpc_error(error: GatewayError, request_id: RequestId) -> bytes:
    """A JSON-RPC 2.0 error response for ``error`` (``id`` null when unknown)."""
    data: dict[str, Any] = {"type": f"urn:meshgate:error:{error.code}", "status": error.status}
    if error.retry_after is not None:
        data["retry_after"] = max(1, math.ceil(error.retry_after))
    return _dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": error.jsonrpc_code, "message": error.detail, "data": data},
        }
    )


def jsonrpc_response(
    error: GatewayError, request_id: RequestId = None
) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)``: the table's status with a JSON-RPC error body."""
    body = jsonrpc_error(error, request_id)
    return error.status, _headers(error, b"application/json", body), body


def is_jsonrpc_route(method: str, path: str) -> bool:
    """Whether a canonical path + method is a JSON-RPC endpoint of the gateway."""
    if method != "POST":
        return False
    if path == "/mcp":
        return True
    parts = path.split("/")
    # ["", "a2a", agent] or ["", "a2a", "skills", skill]
    return (
        len(parts) >= 3
        and parts[1] == "a2a"
        and (len(parts) == 3 or (len(parts) == 4 and parts[2] == "skills"))
    )


def error_response(
    error: GatewayError, *, jsonrpc: bool, request_id: RequestId = None
) -> tuple[int, Headers, bytes]:
    """Problem details or a JSON-RPC error, as the route wants."""
    return jsonrpc_response(error, request_id) if jsonrpc else problem_response(error)


async def send_error(
    send: Send,
    error: GatewayError,
    *,
    jsonrpc: bool = False,
    request_id: RequestId = None,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Send ``error`` as a whole ASGI HTTP response (with ``extra`` headers not set already)."""
    status, headers, body = error_response(error, jsonrpc=jsonrpc, request_id=request_id)
    if extra:
        present = {name.lower() for name, _ in headers}
        headers = [*headers, *(h for h in extra if h[0] not in present)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def handle_exception(request: Request, exc: Exception) -> Response:
    """A Starlette exception handler: a GatewayError as itself, anything else as 500.

    Register for ``GatewayError`` and ``Exception``; the message of an
    unexpected exception and its traceback never reach the caller.
    """
    error = exc if isinstance(exc, GatewayError) else GatewayError()
    status, headers, body = error_response(
        error, jsonrpc=is_jsonrpc_route(request.method, request.scope["path"])
    )
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response
