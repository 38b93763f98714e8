"""HTTP/1.1 bytes on the wire: the request head, and which headers a proxy drops."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["HOP_BY_HOP", "encode_head", "host_header", "response_headers"]

Headers = list[tuple[bytes, bytes]]

#: Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade"}
)
# Host and Content-Length are written by the client itself; a caller's copy would
# duplicate them, and a second framing header is how requests get smuggled.
_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"proxy-connection", b"expect"}
# Methods whose empty body needs no Content-Length (RFC 9110 §8.6: a client
# should not send one when the method defines no meaning for content).
_NO_BODY_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"DELETE"})


def host_header(host: str, port: int) -> bytes:
    """The Host value for an origin: IPv6 literals bracketed, port 80 implied."""
    name = f"[{host}]" if ":" in host else host
    return name.encode("idna") if port == 80 else f"{name}:{port}".encode("idna")


def encode_head(
    method: bytes, target: bytes, host: bytes, headers: Sequence[tuple[bytes, bytes]], length: int
) -> bytes:
    """The request head for a body of ``length`` bytes.

    Raises ``ValueError`` if a CR or LF hides in the method, target or a header:
    a caller bug that would otherwise let a value add lines to the request.
    """
    parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    lines = 3  # request line, host, and the blank line that ends the head
    if length or method not in _NO_BODY_METHODS:
        parts.append(b"content-length: %d\r\n" % length)
        lines += 1
    for name, value in headers:
        low = name.lower()
        if low not in _REQUEST_DROP and low[:6] != b"proxy-":
            parts += (name, b": ", value, b"\r\n")
            lines += 1
    parts.append(b"\r\n")
    head = b"".join(parts)
    # Every line above ends in exactly one CRLF; any other CR or LF came from a value.
    if head.count(b"\n") != lines or head.count(b"\r") != lines:
        raise ValueError("CR or LF in the request line or a header")
    return head


def response_headers(raw: Headers) -> Headers:
    """``raw`` (names lowercased) without hop-by-hop headers, ``proxy-*`` and any
    header the ``Connection`` header names."""
    drop: frozenset[bytes] | set[bytes] = HOP_BY_HOP
    for name, value in raw:
        if name == b"connection":
            drop = drop | {t.strip().lower() for t in value.split(b",")}
    return [h for h in raw if h[0] not in drop and h[0][:6] != b"proxy-"]
