"""A raw HTTP/1.1 client: the request target goes on the wire byte for byte."""

from __future__ import annotations

from dataclasses import dataclass

import anyio


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(
    port: int,
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> Reply:
    """One request on a fresh connection to 127.0.0.1:``port`` (read to EOF)."""
    lines = [method + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"connection: close", b"content-length: " + str(len(body)).encode()]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    chunks: list[bytes] = []
    with anyio.fail_after(5):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(data)
            try:
                while True:
                    chunks.append(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    pairs = (line.split(": ", 1) for line in header_lines if ": " in line)
    parsed = {name.lower(): value for name, value in pairs}
    if parsed.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return Reply(int(status_line.split(" ")[1]), parsed, payload)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out
