"""The gateway's HTTP protocol writes the same bytes as uvicorn's, a whole response at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from meshgate.serving import _Protocol

pytestmark = pytest.mark.anyio

REQUEST = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"


class Transport(asyncio.Transport):
    """Records what the protocol writes; the socket end of the test."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5000)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def exchange(
    protocol_class: type[HttpToolsProtocol], app: Any, request: bytes = REQUEST
) -> Transport:
    config = uvicorn.Config(app, lifespan="off", proxy_headers=False, log_config=None)
    config.load()
    state = ServerState()
    protocol = protocol_class(config, state, {}, asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    protocol.connection_lost(None)
    return transport


def answer(body: bytes, headers: list[tuple[bytes, bytes]], *, parts: int = 1) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        size = len(body) // parts
        for i in range(parts):
            chunk = body[i * size :] if i == parts - 1 else body[i * size : (i + 1) * size]
            await send({"type": "http.response.body", "body": chunk, "more_body": i < parts - 1})

    return app


async def test_a_response_with_content_length_is_one_write_of_uvicorns_bytes() -> None:
    app = answer(
        b'{"ok":true}', [(b"content-type", b"application/json"), (b"content-length", b"11")]
    )
    ours = await exchange(_Protocol, app)
    theirs = await exchange(HttpToolsProtocol, app)
    assert len(theirs.writes) == 2
    assert len(ours.writes) == 1
    assert ours.writes[0] == b"".join(theirs.writes)
    assert ours.writes[0].endswith(b'\r\n\r\n{"ok":true}')


async def test_a_body_in_parts_sends_the_head_with_the_first_part() -> None:
    app = answer(b"abcdef", [(b"content-length", b"6")], parts=3)
    ours = await exchange(_Protocol, app)
    assert len(ours.writes) == 3
    assert ours.writes[0].endswith(b"\r\n\r\nab")
    assert ours.writes[1:] == [b"cd", b"ef"]


async def test_a_stream_without_length_sends_its_head_at_once() -> None:
    # An SSE answer's head must not wait for its first event.
    started = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        started.set()
        await send({"type": "http.response.body", "body": b"data: 1\n\n"})

    ours = await exchange(_Protocol, app)
    assert started.is_set()
    assert len(ours.writes) == 2
    assert b"transfer-encoding: chunked" in ours.writes[0]
    assert ours.writes[0].endswith(b"\r\n\r\n")


async def test_a_head_request_is_answered_as_by_uvicorn() -> None:
    app = answer(b"", [(b"content-length", b"11")])
    request = b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n"
    ours = await exchange(_Protocol, app, request)
    theirs = await exchange(HttpToolsProtocol, app, request)
    assert b"".join(ours.writes) == b"".join(theirs.writes)


async def test_a_header_that_would_split_the_head_is_still_refused() -> None:
    app = answer(b"x", [(b"content-length", b"1"), (b"bad", b"a\r\nset-cookie: x")])
    ours = await exchange(_Protocol, app)
    theirs = await exchange(HttpToolsProtocol, app)
    assert ours.writes == theirs.writes == []
    assert ours.closed
    assert theirs.closed


@pytest.mark.parametrize(
    ("request_bytes", "headers"),
    [
        (REQUEST, [(b"Content-Type", b"text/plain"), (b"Content-Length", b"3")]),
        (
            b"POST /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
            [(b"content-length", b"3")],
        ),
        (b"POST /x HTTP/1.0\r\ncontent-length: 2\r\n\r\n{}", [(b"content-length", b"3")]),
        (REQUEST, [(b"content-length", b"3"), (b"connection", b"close")]),
    ],
)
async def test_the_bytes_are_uvicorns_whatever_the_headers(
    request_bytes: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    app = answer(b"abc", headers)
    ours = await exchange(_Protocol, app, request_bytes)
    theirs = await exchange(HttpToolsProtocol, app, request_bytes)
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert ours.closed == theirs.closed
