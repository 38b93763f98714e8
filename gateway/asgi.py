"""Small raw-ASGI helpers for the gateway's hot path (no Request objects)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.types import Receive, Scope, Send

from gateway.errors import PayloadTooLarge

__all__ = [
    "HOP_BY_HOP",
    "body_headers",
    "client_credentials",
    "header",
    "read_body",
    "send_body",
    "upstream_headers",
]

#: Headers that belong to one connection, not to the request (RFC 9110 §7.6.1),
#: plus the caller's host and length, which the upstream client sets itself.
HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    )
)
#: The caller's credentials for the gateway: never forwarded upstream.
client_credentials = frozenset((b"authorization", b"x-api-key", b"cookie", b"proxy-authorization"))
_DROPPED = HOP_BY_HOP | client_credentials | {b"x-forwarded-for", b"x-forwarded-host"}


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; :class:`PayloadTooLarge` past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the request body is over {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def upstream_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The caller's headers as an upstream should see them, with X-Forwarded-*."""
    headers: list[tuple[bytes, bytes]] = []
    host: bytes | None = None
    for item in scope["headers"]:
        name = item[0]
        if name not in _DROPPED:
            headers.append(item)
        elif host is None and name == b"host":
            host = bytes(item[1])
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", client[0].encode()))
    if host:
        headers.append((b"x-forwarded-host", host))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    return headers


def body_headers(
    headers: Iterable[tuple[bytes, bytes]], length: int, extra: Sequence[tuple[bytes, bytes]] = ()
) -> list[tuple[bytes, bytes]]:
    """``headers`` with a Content-Length of ``length`` and ``extra`` merged as :func:`send_body`
    says."""
    size = (b"content-length", b"%d" % length)
    if not extra:
        out = [h for h in headers if h[0] != b"content-length"]
        out.append(size)
        return out
    out = []
    present: set[bytes] = set()
    for item in headers:
        name = item[0].lower()
        if name == b"content-length" or name.startswith(b"access-control-"):
            continue
        present.add(name)
        out.append(item)
    out.append(size)
    out += [h for h in extra if h[0] not in present]
    return out


async def send_body(
    send: Send,
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """One whole response with its Content-Length.

    ``extra``: headers added unless set already, with any ``access-control-*``
    dropped, as :func:`~gateway.security.headers.merge_headers` does (the fast
    path's security headers, merged here in the same pass).
    """
    out = body_headers(headers, len(body), extra)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
