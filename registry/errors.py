"""The registry's exception family and the one table that maps it to the wire.

Every error a caller can see is a :class:`RegistryError`. The HTTP service
renders it as RFC 9457 problem details; the client turns problem details back
into the same class; MCP/JSON-RPC faces use the JSON-RPC code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ERROR_TABLE",
    "BackendUnavailable",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "RegistryError",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_for",
]


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request (``field`` is a dotted path)."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class RegistryError(Exception):
    """Base of every error the registry reports to a caller."""

    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code][0]

    @property
    def jsonrpc_code(self) -> int:
        return ERROR_TABLE[self.code][1]

    def problem(self) -> dict[str, Any]:
        """RFC 9457 problem details."""
        body: dict[str, Any] = {
            "type": f"urn:meshgate:error:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body


class BadRequest(RegistryError):
    """The request could not be read at all (malformed JSON, bad encoding)."""

    code = "bad-request"
    title = "Bad request"


class InvalidRequest(RegistryError):
    """The request was read but a field breaks a rule; ``errors`` names the fields."""

    code = "invalid-request"
    title = "Invalid request"


class Unauthorized(RegistryError):
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(RegistryError):
    code = "forbidden"
    title = "Forbidden"


class NotFound(RegistryError):
    code = "not-found"
    title = "Not found"


class Conflict(RegistryError):
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(RegistryError):
    code = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(RegistryError):
    code = "unsupported-media-type"
    title = "Unsupported media type"


class BackendUnavailable(RegistryError):
    code = "unavailable"
    title = "Registry backend unavailable"


def _rpc(status: int) -> int:
    # Outside -32768..-32000: A2A (-32001..-32009) and MCP (-32020..-32099)
    # give codes there their own meanings; the gateway uses the same scheme.
    return -31000 - status


#: code -> (HTTP status, JSON-RPC error code): the standard codes where
#: JSON-RPC has one, ``-31000 - status`` otherwise.
ERROR_TABLE: dict[str, tuple[int, int]] = {
    BadRequest.code: (400, -32700),
    InvalidRequest.code: (422, -32602),
    Unauthorized.code: (401, _rpc(401)),
    Forbidden.code: (403, _rpc(403)),
    NotFound.code: (404, _rpc(404)),
    Conflict.code: (409, _rpc(409)),
    PayloadTooLarge.code: (413, _rpc(413)),
    UnsupportedMediaType.code: (415, _rpc(415)),
    BackendUnavailable.code: (503, _rpc(503)),
    RegistryError.code: (500, -32603),
}

_BY_CODE: dict[str, type[RegistryError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        InvalidRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        BackendUnavailable,
        RegistryError,
    )
}


def error_for(problem: dict[str, Any], status: int) -> RegistryError:
    """Rebuild the registry error that a problem-details body describes."""
    code = str(problem.get("type", "")).rpartition(":")[2]
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = next(
            (c for c in _BY_CODE.values() if ERROR_TABLE[c.code][0] == status), RegistryError
        )
    errors = [
        FieldError(str(e.get("field", "")), str(e.get("message", "")))
        for e in problem.get("errors") or []
        if isinstance(e, dict)
    ]
    return cls(str(problem.get("detail") or problem.get("title") or status), errors=errors)
