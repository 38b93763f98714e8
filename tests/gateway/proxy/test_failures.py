"""The upstream client against upstreams that misbehave: errors, timeouts, stale
connections, cancellation and flow control."""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import time
from collections.abc import AsyncIterator

import anyio
import pytest

from gateway.proxy import (
    ClientSettings,
    UpstreamBodyTooLarge,
    UpstreamClient,
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.proxy.connection import HIGH_WATER
from tests.gateway.proxy.servers import Peer, keep_alive, raw_server, response
from tests.support.live import free_port
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    yield client
    await client.aclose()


# -- framing ----------------------------------------------------------------------------


async def test_chunked_body_is_decoded_and_trailers_dropped(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(
            CHUNKED + b"trailer: x-checksum\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\n"
            b"x-end: 1\r\nproxy-authenticate: Basic\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-checksum: abc\r\n\r\n"
        )
        await keep_alive(peer)

    async with raw_server(handler) as server:
        response = await client.request(server.origin, b"GET", b"/", [], b"")
        assert await response.read() == b"hello, world"
        assert response.headers == [(b"x-end", b"1")]
        # Trailers consumed: the connection carries the next exchange.
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        assert server.connections == 1


async def test_interim_responses_are_skipped(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n")
        await peer.send(response(b"final", headers=b"x-final: 1\r\n"))

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"")
        assert answer.status == 200
        assert answer.headers == [(b"content-length", b"5"), (b"x-final", b"1")]
        assert await answer.read() == b"final"


async def test_a_body_delimited_by_close_is_complete_at_eof(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await peer.close()

    async with raw_server(handler) as server:
        response_ = await client.request(server.origin, b"GET", b"/", [], b"")
        assert await response_.read() == b"until the end"
        assert response_.complete


async def test_a_head_without_content_length_does_not_wait_for_a_body(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")
        await peer.wait_gone()

    async with raw_server(handler) as server:
        with anyio.fail_after(5):
            answer = await client.request(server.origin, b"HEAD", b"/", [], b"")
            assert await answer.read() == b""
        # Keep-alive is unknowable without a length: the connection is closed.
        peer = await server.peer(0)
        with anyio.fail_after(5):
            await peer.gone.wait()


# -- connection reuse and staleness ------------------------------------------------------


async def test_a_pooled_connection_the_upstream_closed_is_replaced_transparently(
    client: UpstreamClient,
) -> None:
    closed = asyncio.Event()

    async def handler(peer: Peer) -> None:
        # Keep-alive promised, then the connection dropped right after the answer:
        # the client's next request finds it dead before writing a byte.
        await peer.read_request()
        await peer.send(response())
        await peer.close()
        closed.set()

    async with raw_server(handler) as server:
        for round_ in range(3):
            closed.clear()
            answer = await client.request(server.origin, b"POST", b"/", [], b"not idempotent")
            assert await answer.read() == b"ok"
            with anyio.fail_after(5):
                await closed.wait()
            assert server.connections == round_ + 1


async def test_unsolicited_bytes_on_an_idle_connection_retire_it(client: UpstreamClient) -> None:
    sent = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response())
        await peer.send(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        sent.set()
        await peer.wait_gone()

    async with raw_server(handler) as server:
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        with anyio.fail_after(5):
            await sent.wait()
        # The stray 408 is not taken as the next answer: a new connection is.
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        assert server.connections == 2
        with anyio.fail_after(5):
            await server.peers[0].gone.wait()


async def test_idle_connections_expire(client: UpstreamClient) -> None:
    client = UpstreamClient(ClientSettings(idle_timeout=0.05))
    try:

        async def handler(peer: Peer) -> None:
            await peer.read_request()
            await peer.send(response())
            await peer.wait_gone()

        async with raw_server(handler) as server:
            assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read()
            with anyio.fail_after(5):  # the sweep closes it; the server sees EOF
                await (await server.peer(0)).gone.wait()
            # And forgets the origin: instances that come and go leave nothing behind.
            assert server.origin not in client._pool.origins
    finally:
        await client.aclose()


async def test_a_connection_in_use_when_its_origin_was_swept_is_reused() -> None:
    client = UpstreamClient(ClientSettings(idle_timeout=0.05))
    try:
        released = asyncio.Event()

        async def handler(peer: Peer) -> None:
            while True:
                request = await peer.read_request()
                if request.request_line.startswith(b"GET /slow"):
                    await released.wait()
                await peer.send(response())

        async with raw_server(handler) as server:
            assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read()
            # The idle connection is taken again; the sweep then finds the origin
            # without idle connections and drops it.
            slow = asyncio.ensure_future(client.request(server.origin, b"GET", b"/slow", [], b""))

            async def origins() -> set[tuple[str, int]]:
                return set(client._pool.origins)

            await eventually(origins, lambda known: server.origin not in known)
            released.set()
            assert await (await slow).read() == b"ok"
            assert server.origin in client._pool.origins  # back, with its connection
            assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read()
            assert server.connections == 1
    finally:
        await client.aclose()


async def test_an_early_answer_with_request_bytes_unsent_is_not_reused(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        # Answer after the head, without reading the body (as for a 413): the
        # unsent rest of the body must not become the start of the next request.
        await peer.read_request(body=False)
        await peer.send(response(b"too large", status=b"413 Content Too Large"))
        await peer.wait_gone()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"POST", b"/", [], b"x" * (64 << 20))
        assert answer.status == 413
        assert await answer.read() == b"too large"
        with anyio.fail_after(10):
            await (await server.peer(0)).gone.wait()


async def test_client_aclose_closes_idle_connections() -> None:
    client = UpstreamClient()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response())
        await peer.wait_gone()

    async with raw_server(handler) as server:
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        await client.aclose()
        with anyio.fail_after(5):
            await (await server.peer(0)).gone.wait()
        with pytest.raises(RuntimeError, match="closed"):
            await client.request(server.origin, b"GET", b"/", [], b"")


# -- errors --------------------------------------------------------------------------------


async def test_connect_refused_is_not_sent(client: UpstreamClient) -> None:
    with pytest.raises(UpstreamConnectError) as caught:
        await client.request(("127.0.0.1", free_port()), b"POST", b"/", [], b"{}")
    assert caught.value.sent is False


async def test_connect_timeout_is_not_sent() -> None:
    # A listener that never accepts, its backlog already full: the SYN goes unanswered.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    # The queue is full only once a filler's handshake has completed; on a busy
    # machine that is not at once, and the client's SYN would get in first.
    _, connected, _ = select.select([], fillers, [], 5)
    assert any(f.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for f in connected)
    client = UpstreamClient(ClientSettings(connect_timeout=0.2))
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await client.request(listener.getsockname(), b"POST", b"/", [], b"{}")
        # Event-loop timers may fire up to a millisecond early (uvloop rounds to ms).
        assert 0.19 <= time.monotonic() - started < 2
        assert caught.value.sent is False
    finally:
        await client.aclose()
        for sock in (*fillers, listener):
            sock.close()


async def test_read_timeout_waiting_for_the_head_is_sent(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.wait_gone()  # never answers

    async with raw_server(handler) as server:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await client.request(server.origin, b"POST", b"/", [], b"{}", read_timeout=0.2)
        elapsed = time.monotonic() - started
        assert 0.2 <= elapsed < 2
        assert caught.value.sent is True
        with anyio.fail_after(5):  # the connection was closed, not pooled
            await (await server.peer(0)).gone.wait()


async def test_a_shorter_read_timeout_on_a_reused_connection_applies(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response())
        await peer.read_request()
        await peer.wait_gone()  # the second request is never answered

    async with raw_server(handler) as server:
        first = await client.request(server.origin, b"GET", b"/", [], b"", read_timeout=60)
        assert await first.read() == b"ok"
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await client.request(server.origin, b"GET", b"/", [], b"", read_timeout=0.2)
        # Event-loop timers may fire up to a millisecond early (uvloop rounds to ms).
        assert 0.19 <= time.monotonic() - started < 2
        assert server.connections == 1


async def test_read_timeout_between_body_chunks(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED + b"\r\n5\r\nfirst\r\n")
        await peer.wait_gone()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"", read_timeout=0.2)
        stream = answer.stream()
        assert await stream.__anext__() == b"first"
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await stream.__anext__()
        # Event-loop timers may fire up to a millisecond early (uvloop rounds to ms).
        assert 0.19 <= time.monotonic() - started < 2
        assert caught.value.sent is True
        with pytest.raises(StopAsyncIteration):  # the response is finished with
            await stream.__anext__()


async def test_upstream_closing_mid_body_raises_closed(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 10)
        await peer.close()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"")
        with pytest.raises(UpstreamClosed) as caught:
            await answer.read()
        assert caught.value.sent is True


async def test_upstream_closing_before_answering_raises_closed_and_sent(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.close()

    async with raw_server(handler) as server:
        with pytest.raises(UpstreamClosed) as caught:
            await client.request(server.origin, b"POST", b"/", [], b"{}")
        assert caught.value.sent is True


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"garbage garbage\r\n\r\n", "invalid response"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "TLS"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"upgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            "switched protocols",
        ),
        (b"HTTP/1.1 200 OK\r\n" + b"x-big: " + b"y" * 70_000 + b"\r\n\r\n", "too large"),
        (b"HTTP/1.1 200 OK\r\nx-endless: " + b"y" * 100_000, "too large"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nab", "invalid"),
    ],
    ids=["garbage", "tls", "upgrade", "head-too-large", "endless-head", "two-lengths"],
)
async def test_invalid_answers_raise_protocol_errors(
    client: UpstreamClient, answer: bytes, message: str
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(answer)
        await peer.wait_gone()

    async with raw_server(handler) as server:
        with pytest.raises(UpstreamProtocolError, match=message) as caught:
            await client.request(server.origin, b"GET", b"/", [], b"")
        assert caught.value.sent is True
        with anyio.fail_after(5):
            await (await server.peer(0)).gone.wait()


async def test_a_second_response_nobody_asked_for_retires_the_connection(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(b"one") + response(b"two"))  # in one segment
        await peer.wait_gone()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"")
        assert await answer.read() == b"one"
        with anyio.fail_after(5):
            await (await server.peer(0)).gone.wait()


async def test_read_past_max_bytes_fails_and_closes(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED + b"\r\n" + b"400\r\n" + b"z" * 1024 + b"\r\n")
        await peer.wait_gone()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"")
        with pytest.raises(UpstreamBodyTooLarge):
            await answer.read(max_bytes=1000)
        with anyio.fail_after(5):
            await (await server.peer(0)).gone.wait()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="read_timeout"):
        ClientSettings(read_timeout=0)
    with pytest.raises(ValueError, match="max_response_head"):
        ClientSettings(max_response_head=10)


# -- going away: aclose and cancellation ----------------------------------------------------


async def test_aclose_mid_stream_closes_the_upstream_connection(client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED + b"\r\n" + b"6\r\nevent1\r\n")
        await peer.wait_gone()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/sse", [], b"")
        assert await answer.stream().__anext__() == b"event1"
        await answer.aclose()
        with anyio.fail_after(5):
            await (await server.peer(0)).gone.wait()
        assert not answer.complete


async def test_a_response_dropped_unfinished_closes_its_connection(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED + b"\r\n" + b"6\r\nevent1\r\n")
        await peer.wait_gone()

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/sse", [], b"")
        del answer  # a caller bug: never read nor closed
        with anyio.fail_after(5):
            await (await server.peer(0)).gone.wait()


async def test_cancelling_a_request_awaiting_its_head_closes_the_connection(
    client: UpstreamClient,
) -> None:
    received = asyncio.Event()

    async def handler(peer: Peer) -> None:
        if peer.index == 0:
            await peer.read_request()
            received.set()
            await peer.wait_gone()
        else:
            await keep_alive(peer)

    async with raw_server(handler) as server:
        task = asyncio.create_task(client.request(server.origin, b"POST", b"/", [], b"{}"))
        with anyio.fail_after(5):
            await received.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with anyio.fail_after(5):
            await server.peers[0].gone.wait()
        # Never pooled half-read: the next request gets a fresh connection.
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        assert server.connections == 2


async def test_cancelling_a_stream_mid_body_closes_the_connection(
    client: UpstreamClient,
) -> None:
    async def handler(peer: Peer) -> None:
        if peer.index == 0:
            await peer.read_request()
            await peer.send(CHUNKED + b"\r\n" + b"3\r\none\r\n")
            await peer.wait_gone()
        else:
            await keep_alive(peer)

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"")
        got: list[bytes] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for chunk in answer.stream():
                got.append(chunk)
                first.set()

        task = asyncio.create_task(consume())
        with anyio.fail_after(5):
            await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert got == [b"one"]
        with anyio.fail_after(5):
            await server.peers[0].gone.wait()
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        assert server.connections == 2


async def test_cancelling_a_connect_leaves_nothing_behind(client: UpstreamClient) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    try:
        with anyio.move_on_after(0.1) as scope:
            await client.request(listener.getsockname(), b"GET", b"/", [], b"")
        assert scope.cancelled_caught
    finally:
        for sock in (*fillers, listener):
            sock.close()


# -- flow control ------------------------------------------------------------------------------


async def test_reading_pauses_while_the_caller_is_behind(client: UpstreamClient) -> None:
    total = 32 << 20
    wrote = 0

    async def handler(peer: Peer) -> None:
        nonlocal wrote
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        block = b"b" * 65536
        while wrote < total:
            await peer.send(block)  # drain() blocks once the client stops reading
            wrote += len(block)
        await keep_alive(peer)

    async with raw_server(handler) as server:
        answer = await client.request(server.origin, b"GET", b"/", [], b"")
        conn = answer._conn
        assert conn is not None
        with anyio.fail_after(10):
            while not conn._paused:  # the parser fills the buffer as the loop turns
                await conn.wait(5)
        # The client holds about HIGH_WATER (plus one read), not the body.
        assert sum(map(len, conn.chunks)) <= HIGH_WATER + (1 << 18)
        assert wrote < total
        size = 0
        async for chunk in answer.stream():
            size += len(chunk)
        assert size == total
        assert await (await client.request(server.origin, b"GET", b"/", [], b"")).read() == b"ok"
        assert server.connections == 1


# -- addresses refused at connect time ---------------------------------------------------


def _no_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    return "loopback address" if ip.is_loopback else None


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_an_address_refused_at_connect_time_is_never_connected_to(host: str) -> None:
    # A name checked when it was registered may resolve elsewhere now (DNS
    # rebinding): the address a connect would reach is checked after resolving.
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response())

    client = UpstreamClient(refuse_address=_no_loopback)
    try:
        async with raw_server(handler) as server:
            with pytest.raises(UpstreamConnectError, match="which is refused: loopback") as err:
                await client.request((host, server.origin[1]), b"POST", b"/", [], b"x")
            assert err.value.sent is False
            assert server.connections == 0
            allowed = UpstreamClient(refuse_address=lambda ip: None)
            try:  # the same server, reached when the address is allowed
                answer = await allowed.request((host, server.origin[1]), b"GET", b"/", [], b"")
                assert await answer.read() == b"ok"
            finally:
                await allowed.aclose()
    finally:
        await client.aclose()
