"""Writes held to the end of the event loop's pass (gateway.proxy.batch): made
then, in order; a request still held when its connection goes counts as not sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest

from gateway.proxy import UpstreamClient, UpstreamClosed
from gateway.proxy.batch import WriteBatch
from tests.gateway.proxy.servers import Peer, raw_server, response

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    yield client
    await client.aclose()


async def test_held_writes_are_made_after_the_callbacks_ready_before_them_in_order() -> None:
    loop = asyncio.get_running_loop()
    batch = WriteBatch.of(loop)
    assert WriteBatch.of(loop) is batch
    seen: list[bytes] = []
    loop.call_soon(seen.append, b"ready first")
    batch.add(seen.append, b"one")
    batch.add(seen.append, b"two")
    assert seen == []  # nothing is written on the spot
    await asyncio.sleep(0)
    assert seen == [b"ready first", b"one", b"two"]
    batch.add(seen.append, b"three")  # a new pass, a new flush
    await asyncio.sleep(0)
    assert seen[-1] == b"three"


async def test_a_request_held_when_its_connection_goes_is_reported_as_not_sent(
    client: UpstreamClient,
) -> None:
    requests = 0

    async def handler(peer: Peer) -> None:
        nonlocal requests
        while True:
            await peer.read_request()
            requests += 1
            await peer.send(response())

    async with raw_server(handler) as server:
        first = await client.request(server.origin, b"POST", b"/", [], b"first")
        assert await first.read() == b"ok"
        # The pooled connection the next request will take (no public handle on it).
        idle = client._pool.origins[server.origin].idle[-1]
        pending = asyncio.ensure_future(
            client.request(server.origin, b"POST", b"/", [], b"not idempotent")
        )
        await asyncio.sleep(0)  # the request's first step: taken, its write held
        assert not idle.idle
        idle.abort()  # gone before the end of the pass
        with pytest.raises(UpstreamClosed) as caught, anyio.fail_after(5):
            await pending
        assert caught.value.sent is False  # so the caller may retry it anywhere
        assert requests == 1
