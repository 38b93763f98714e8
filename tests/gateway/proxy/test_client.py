"""The upstream client against uvicorn upstreams: framing, pooling, streaming."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from gateway.proxy import ClientSettings, UpstreamClient, UpstreamResponse
from tests.support.live import serve

pytestmark = pytest.mark.anyio

Scope = dict[str, Any]


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def answer(send: Any, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    head = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class Upstream:
    """A uvicorn app with the behaviours the tests need, selected by path."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.ports: list[int] = []  # client port of each request: one per connection

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.ports.append(scope["client"][1])
        body = await read_body(receive)
        path = scope["path"]
        if path == "/echo":
            report = {
                "method": scope["method"],
                "target": scope["raw_path"].decode() + "?" + scope["query_string"].decode(),
                "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
                "sha256": hashlib.sha256(body).hexdigest(),
                "length": len(body),
            }
            await answer(send, 200, json.dumps(report).encode(), [(b"x-echo", b"1")])
        elif path == "/mirror":  # the body back, streamed in 64 KiB chunks (chunked)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for start in range(0, len(body), 65536):
                chunk = body[start : start + 65536]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/close":
            await answer(send, 200, b"bye", [(b"connection", b"close")])
        elif path == "/sse":
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            while (event := await self.events.get()) is not None:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await answer(send, 200, b"hello")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, tuple[str, int]]]:
    app = Upstream()
    async with serve(app, lifespan="off") as url:
        yield app, ("127.0.0.1", int(url.rsplit(":", 1)[1]))


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    yield client
    await client.aclose()


async def get(
    client: UpstreamClient, origin: tuple[str, int], target: bytes = b"/", **kw: Any
) -> UpstreamResponse:
    return await client.request(origin, b"GET", target, kw.get("headers", []), b"")


async def test_post_writes_host_and_length_and_the_callers_headers(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    _, origin = upstream
    body = b'{"jsonrpc":"2.0","id":1,"method":"SendMessage"}'
    headers = [
        (b"content-type", b"application/json"),
        (b"host", b"evil.example"),  # dropped: Host comes from the origin
        (b"Content-Length", b"999"),  # dropped: the client frames the body itself
        (b"transfer-encoding", b"chunked"),
        (b"a2a-version", b"1.0"),
    ]
    response = await client.request(origin, b"POST", b"/echo?x=1&y=2", headers, body)
    assert response.status == 200
    report = json.loads(await response.read())
    assert report["method"] == "POST"
    assert report["target"] == "/echo?x=1&y=2"
    assert report["length"] == len(body)
    assert report["headers"] == [
        ["host", f"127.0.0.1:{origin[1]}"],
        ["content-length", str(len(body))],
        ["content-type", "application/json"],
        ["a2a-version", "1.0"],
    ]
    assert (b"x-echo", b"1") in response.headers
    assert all(name == name.lower() for name, _ in response.headers)
    assert response.complete


async def test_a_get_without_body_sends_no_content_length(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    _, origin = upstream
    report = json.loads(await (await get(client, origin, b"/echo")).read())
    assert report["method"] == "GET"
    assert [name for name, _ in report["headers"]] == ["host"]


async def test_keep_alive_reuses_one_connection(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream
    for _ in range(20):
        response = await client.request(origin, b"POST", b"/", [], b"{}")
        assert await response.read() == b"hello"
    assert len(app.ports) == 20
    assert len(set(app.ports)) == 1


async def test_concurrent_requests_open_connections_then_reuse_them(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream

    async def one() -> None:
        response = await get(client, origin)
        assert await response.read() == b"hello"

    for _ in range(3):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
    assert len(app.ports) == 24
    assert len(set(app.ports)) == 8


async def test_idle_connections_beyond_the_limit_are_closed(
    upstream: tuple[Upstream, tuple[str, int]],
) -> None:
    app, origin = upstream
    client = UpstreamClient(ClientSettings(max_idle_per_origin=2))
    try:
        for _ in range(2):
            responses = [await get(client, origin) for _ in range(5)]  # 5 in flight
            for response in responses:
                await response.read()
        # Round two reused the 2 connections kept idle and opened 3 new ones.
        assert len(set(app.ports)) == 8
    finally:
        await client.aclose()


async def test_a_large_body_goes_up_and_comes_back_chunked(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream
    body = bytes(range(256)) * (12 * 4096 + 7)  # ~12 MiB, not a multiple of any chunk size
    response = await client.request(origin, b"POST", b"/mirror", [], body)
    assert response.status == 200
    assert (b"transfer-encoding", b"chunked") not in response.headers
    sizes = []
    async for chunk in response.stream():
        sizes.append(len(chunk))
    assert sum(sizes) == len(body)
    assert len(sizes) > 1
    # The connection survived the exchange and is reused.
    assert await (await get(client, origin)).read() == b"hello"
    assert len(set(app.ports)) == 1


async def test_read_returns_the_whole_body(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    _, origin = upstream
    body = b"x" * 300_000
    response = await client.request(origin, b"POST", b"/mirror", [], body)
    assert await response.read() == body


@pytest.mark.parametrize("status", [204, 304])
async def test_responses_without_body_keep_the_connection(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient, status: int
) -> None:
    app, origin = upstream
    response = await get(client, origin, b"/status/%d" % status)
    assert response.status == status
    assert response.complete  # nothing to read: the connection is already back
    assert await response.read() == b""
    assert await (await get(client, origin)).read() == b"hello"
    assert len(set(app.ports)) == 1


async def test_head_ends_at_the_head_although_content_length_says_more(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream
    response = await client.request(origin, b"HEAD", b"/", [], b"")
    assert response.status == 200
    assert (b"content-length", b"5") in response.headers
    assert await response.read() == b""
    # The next exchange on the same connection parses cleanly.
    for _ in range(2):
        assert await (await get(client, origin)).read() == b"hello"
    assert len(set(app.ports)) == 1


async def test_connection_close_is_honoured(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream
    response = await get(client, origin, b"/close")
    assert await response.read() == b"bye"
    assert all(name != b"connection" for name, _ in response.headers)
    assert await (await get(client, origin)).read() == b"hello"
    assert len(set(app.ports)) == 2


async def test_sse_events_arrive_one_by_one_before_the_stream_ends(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream
    response = await get(client, origin, b"/sse")
    assert response.status == 200
    assert (b"content-type", b"text/event-stream") in response.headers
    stream = response.stream()
    with anyio.fail_after(5):
        for n in range(5):
            event = b'event: update\ndata: {"n": %d}\n\n' % n
            # The upstream sends the next event only now: receiving it proves the
            # client passed the previous one on without waiting for more.
            app.events.put_nowait(event)
            assert await stream.__anext__() == event
        assert not response.complete
        app.events.put_nowait(None)
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
    assert response.complete


async def test_aclose_without_reading_a_complete_body_keeps_the_connection(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    app, origin = upstream
    response = await client.request(origin, b"POST", b"/mirror", [], b"abc" * 10)
    # Wait for the whole answer to have arrived, without reading it.
    conn = response._conn
    assert conn is not None
    with anyio.fail_after(5):
        while not conn.complete:
            await conn.wait(5)
    await response.aclose()
    assert not response.complete  # the caller did not read it
    assert await (await get(client, origin)).read() == b"hello"
    assert len(set(app.ports)) == 1


async def test_a_per_request_read_timeout_overrides_the_setting(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    _, origin = upstream
    response = await client.request(origin, b"GET", b"/", [], b"", read_timeout=5.0)
    assert await response.read() == b"hello"


async def test_a_name_is_resolved(
    upstream: tuple[Upstream, tuple[str, int]], client: UpstreamClient
) -> None:
    # "localhost" may resolve to ::1 first, where nothing listens: the client
    # tries each address in turn.
    _, (_, port) = upstream
    response = await client.request(("localhost", port), b"GET", b"/echo", [], b"")
    report = json.loads(await response.read())
    assert report["headers"][0] == ["host", f"localhost:{port}"]
