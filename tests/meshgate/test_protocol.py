"""The gateway's HTTP protocol: uvicorn's bytes, a whole response in one write, and
uvicorn's keep-alive timeout kept with one lazy timer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from meshgate.protocol import ProxyProtocol

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


def connect(
    protocol_class: type[HttpToolsProtocol], app: Any, *, keep_alive: float = 5
) -> tuple[HttpToolsProtocol, Transport, ServerState]:
    config = uvicorn.Config(app, lifespan="off", proxy_headers=False, log_config=None)
    # uvicorn types it as whole seconds but schedules it as any float (fast tests).
    config.timeout_keep_alive = keep_alive  # type: ignore[assignment]
    config.load()
    state = ServerState()
    protocol = protocol_class(config, state, {}, asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def exchange(
    protocol_class: type[HttpToolsProtocol], app: Any, request: bytes = REQUEST
) -> Transport:
    protocol, transport, state = connect(protocol_class, app)
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
    ours = await exchange(ProxyProtocol, app)
    theirs = await exchange(HttpToolsProtocol, app)
    assert len(theirs.writes) == 2
    assert len(ours.writes) == 1
    assert ours.writes[0] == b"".join(theirs.writes)
    assert ours.writes[0].endswith(b'\r\n\r\n{"ok":true}')


async def test_a_body_in_parts_sends_the_head_with_the_first_part() -> None:
    app = answer(b"abcdef", [(b"content-length", b"6")], parts=3)
    ours = await exchange(ProxyProtocol, app)
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

    ours = await exchange(ProxyProtocol, app)
    assert started.is_set()
    assert len(ours.writes) == 2
    assert b"transfer-encoding: chunked" in ours.writes[0]
    assert ours.writes[0].endswith(b"\r\n\r\n")


async def test_a_head_request_is_answered_as_by_uvicorn() -> None:
    app = answer(b"", [(b"content-length", b"11")])
    request = b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n"
    ours = await exchange(ProxyProtocol, app, request)
    theirs = await exchange(HttpToolsProtocol, app, request)
    assert b"".join(ours.writes) == b"".join(theirs.writes)


async def test_a_header_that_would_split_the_head_is_still_refused() -> None:
    app = answer(b"x", [(b"content-length", b"1"), (b"bad", b"a\r\nset-cookie: x")])
    ours = await exchange(ProxyProtocol, app)
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
    ours = await exchange(ProxyProtocol, app, request_bytes)
    theirs = await exchange(HttpToolsProtocol, app, request_bytes)
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert ours.closed == theirs.closed


async def eventually(condition: Any, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    app = answer(b"abc", [(b"content-length", b"3")])
    protocol, transport, _ = connect(ProxyProtocol, app, keep_alive=0.2)
    started = asyncio.get_running_loop().time()
    protocol.data_received(REQUEST)
    await eventually(lambda: transport.closed)
    assert asyncio.get_running_loop().time() - started >= 0.19
    assert transport.writes[0].endswith(b"abc")


async def test_a_connection_in_use_is_not_closed_by_the_keep_alive_timeout() -> None:
    app = answer(b"abc", [(b"content-length", b"3")])
    protocol, transport, _ = connect(ProxyProtocol, app, keep_alive=0.2)
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.6
    sent = 0
    while loop.time() < until:  # a request every 50 ms: never idle for 0.2 s
        protocol.data_received(REQUEST)
        sent += 1
        await asyncio.sleep(0.05)
        assert not transport.closed
    await eventually(lambda: transport.closed)
    # Every request was answered: the timer never cut the connection between them.
    assert len(transport.writes) == sent
    assert sent >= 3


async def test_a_body_still_coming_is_waited_for() -> None:
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        bodies.append(message["body"])
        if message["more_body"]:
            bodies.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    protocol, transport, state = connect(ProxyProtocol, app)
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\n\r\nab")
    await eventually(lambda: bodies == [b"ab"])
    protocol.data_received(b"cd")
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    assert bodies == [b"ab", b"cd"]
    assert transport.writes[0].startswith(b"HTTP/1.1 204 ")


async def test_a_caller_that_goes_away_is_seen_by_receive() -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        seen.append((await receive())["type"])  # blocks until the caller is gone

    protocol, _, state = connect(ProxyProtocol, app)
    protocol.data_received(REQUEST)
    await asyncio.wait_for(started.wait(), 5)
    assert seen == []
    protocol.connection_lost(None)
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    assert seen == ["http.disconnect"]


async def test_two_receives_at_once_both_see_the_caller_go() -> None:
    # A streaming response listens for the disconnect while its app may ask too.
    seen: list[str] = []
    started = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()

        async def listen() -> None:
            seen.append((await receive())["type"])

        await asyncio.gather(listen(), listen())

    protocol, _, state = connect(ProxyProtocol, app)
    protocol.data_received(REQUEST)
    await asyncio.wait_for(started.wait(), 5)
    event = protocol.cycle.message_event
    await eventually(lambda: len(event._waiters or ()) == 2)
    protocol.connection_lost(None)
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    assert seen == ["http.disconnect", "http.disconnect"]


@pytest.mark.parametrize(
    "headers",
    [[(b"content-type", b"text/event-stream")], [(b"content-length", b"9")]],
    ids=["chunked", "content-length"],
)
async def test_a_body_in_many_parts_is_uvicorns_bytes(headers: list[tuple[bytes, bytes]]) -> None:
    app = answer(b"abcdefghi", headers, parts=3)
    ours = await exchange(ProxyProtocol, app)
    theirs = await exchange(HttpToolsProtocol, app)
    assert b"".join(ours.writes) == b"".join(theirs.writes)


# -- the lean path: ``raw_request`` ------------------------------------------------

A2A_POST = b"POST /a2a/x/ HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"


class RawApp:
    """An ASGI app that also offers ``raw_request``, answering or declining it."""

    def __init__(self, take: bool | Exception) -> None:
        self.take = take
        self.offered: list[bytes] = []
        self.asgi_bodies: list[bytes] = []

    async def raw_request(self, scope: dict[str, Any], body: bytes, reply: Any) -> bool:
        self.offered.append(body)
        if isinstance(self.take, Exception):
            raise self.take
        if self.take:
            await reply.whole(200, [(b"content-length", b"2")], b"ok")
        return self.take

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.asgi_bodies.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": LENGTH_2})
        await send({"type": "http.response.body", "body": b"ok"})


LENGTH_2 = [(b"content-length", b"2")]


async def test_the_lean_path_writes_the_asgi_paths_bytes_in_one_write() -> None:
    app = RawApp(take=True)
    ours = await exchange(ProxyProtocol, app, A2A_POST)
    theirs = await exchange(HttpToolsProtocol, app, A2A_POST)
    assert app.offered == [b"{}"]  # once: uvicorn's own protocol never offers it
    assert app.asgi_bodies == [b"{}"]
    assert ours.writes == [b"".join(theirs.writes)]


async def test_a_declined_request_reaches_the_asgi_app_with_its_body() -> None:
    app = RawApp(take=False)
    transport = await exchange(ProxyProtocol, app, A2A_POST)
    assert app.offered == [b"{}"]
    assert app.asgi_bodies == [b"{}"]
    assert transport.writes[0].startswith(b"HTTP/1.1 200 ")


async def test_a_failing_lean_path_answers_uvicorns_500() -> None:
    app = RawApp(take=RuntimeError("boom"))
    ours = await exchange(ProxyProtocol, app, A2A_POST)
    assert b"".join(ours.writes).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert ours.closed


@pytest.mark.parametrize(
    "request_bytes",
    [
        REQUEST,  # not under /a2a/
        A2A_POST.replace(b"POST", b"PUT"),
        A2A_POST[:-1],  # the body is not whole when the task runs
    ],
    ids=["other-path", "other-method", "body-still-coming"],
)
async def test_other_requests_are_not_offered(request_bytes: bytes) -> None:
    app = RawApp(take=True)
    protocol, transport, state = connect(ProxyProtocol, app)
    protocol.data_received(request_bytes)
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    assert app.offered == []
    assert transport.writes[0].startswith(b"HTTP/1.1 200 ")


async def test_a_whole_answer_is_written_at_the_end_of_the_pass_and_before_the_next() -> None:
    # Two pipelined requests: the first answer (whole, held to the end of the
    # loop's pass) and the second (streamed, written at once) keep their order.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/first":
            headers = [(b"content-length", b"5")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"first"})
            assert transport.writes == []  # held: not written on the spot
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"second", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    protocol, transport, state = connect(ProxyProtocol, app)
    protocol.data_received(
        b"GET /first HTTP/1.1\r\nhost: t\r\n\r\nGET /second HTTP/1.1\r\nhost: t\r\n\r\n"
    )
    deadline = asyncio.get_running_loop().time() + 5
    while not transport.writes or b"0\r\n\r\n" not in transport.writes[-1]:
        assert asyncio.get_running_loop().time() < deadline, transport.writes
        await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
        await asyncio.sleep(0)
    text = b"".join(transport.writes)
    assert text.index(b"\r\n\r\nfirst") < text.index(b"second")


async def test_a_graceful_shutdown_closes_after_a_held_answer_is_written() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        assert transport.writes == []  # complete, and held to the end of the pass
        protocol.shutdown()  # the server stops now

    protocol, transport, state = connect(ProxyProtocol, app)
    protocol.data_received(REQUEST)
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    deadline = asyncio.get_running_loop().time() + 5
    while not transport.closed:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0)
    assert b"".join(transport.writes).endswith(b"\r\n\r\nok")
