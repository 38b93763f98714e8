"""The gateway never dispatches to an address its URL policy refuses, whatever the store says.

The registry refuses these URLs at its door (``test_ssrf_corpus``); a store
written past the door (a Consul peer, an older registry) may still list them.
Here the corpus goes straight into the registry's store, each instance
passing, half as agents and half as tool servers; the gateway, with the
production policy, must leave them out of its route table: ``/a2a/{service}/``
answers 404 and ``/mcp`` fetches no tools from them, and the canary on
127.0.0.2 sees no connection. The control: the loopback policy routes the
same kind of instance, and the canary sees it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from ipaddress import IPv4Address

import httpx
import pytest

from gateway.app import GatewaySettings
from registry.backends import MemoryBackend
from registry.models import Registration
from registry.ssrf import UrlPolicy
from tests.agents.mesh import a2a_registration, mcp_registration
from tests.gateway.integration.mesh import gateway_running
from tests.registry.server.conftest import running_registry
from tests.security.canary import Canary, canary
from tests.security.ssrf_corpus import spellings
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

RPC = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "SendMessage",
    "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
}
HEADERS = {"a2a-version": "1.0"}


def dispatch_corpus(seen: Canary) -> list[str]:
    host, port = seen.addresses[0]
    urls = [f"http://{s}:{port}/" for s in spellings(IPv4Address(host))]
    urls += [f"http://{s}:{port}/" for s in spellings(IPv4Address("169.254.169.254"))[::4]]
    urls += [f"http://localhost:{port}/", f"http://metadata.google.internal:{port}/"]
    return urls


def registration(i: int, url: str) -> Registration:
    if i % 2:
        return mcp_registration(url)
    return a2a_registration(f"s{i}", url, ("s",))


@contextlib.asynccontextmanager
async def gateway_over(
    backend: MemoryBackend, policy: UrlPolicy
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_registry(backend) as http:
        settings = GatewaySettings(registry_url="http://registry", url_policy=policy)
        async with gateway_running(settings, http) as (_, client, _):
            yield client


async def stored(backend: MemoryBackend, urls: list[str]) -> None:
    for i, url in enumerate(urls):
        await backend.register(f"s{i}", "a", registration(i, url), owner=None)
        await backend.heartbeat(f"s{i}", "a", owner=None)


async def test_the_gateway_routes_to_no_refused_address() -> None:
    async with canary() as seen:
        urls = dispatch_corpus(seen)
        assert len(urls) >= 100
        backend = MemoryBackend()
        await stored(backend, urls)
        async with gateway_over(backend, UrlPolicy()) as client:

            async def ready() -> httpx.Response:
                return await client.get("/readyz")

            await eventually(ready, lambda r: r.status_code == 200)
            assert (await client.get("/v1/agents")).json() == []
            for i in range(len(urls)):
                answer = await client.post(f"/a2a/s{i}/", json=RPC, headers=HEADERS)
                assert answer.status_code == 404, (urls[i], answer.text)
            listed = await client.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={
                    "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2025-06-18",
                },
            )
            assert listed.status_code < 500, listed.text
        assert seen.connections == []


async def test_the_default_policy_never_dispatches_to_a_metadata_address() -> None:
    backend = MemoryBackend()
    await stored(backend, ["http://169.254.169.254/", "http://0xa9fea9fe/", "http://0.0.0.0:80/"])
    async with gateway_over(backend, GatewaySettings(registry_url="x").url_policy) as client:

        async def ready() -> httpx.Response:
            return await client.get("/readyz")

        await eventually(ready, lambda r: r.status_code == 200)
        assert (await client.get("/v1/agents")).json() == []
        assert (await client.post("/a2a/s0/", json=RPC, headers=HEADERS)).status_code == 404


async def test_the_canary_sees_a_dispatch_the_policy_admits() -> None:
    async with canary() as seen:
        host, port = seen.addresses[0]
        backend = MemoryBackend()
        await stored(backend, [f"http://{host}:{port}/"])
        async with gateway_over(backend, UrlPolicy.loopback()) as client:

            async def agents() -> list[object]:
                found: list[object] = (await client.get("/v1/agents")).json()
                return found

            await eventually(agents, lambda found: len(found) == 1)
            answer = await client.post("/a2a/s0/", json=RPC, headers=HEADERS)
            assert answer.status_code >= 500  # the canary hangs up: a 502, but it was reached
            assert json.loads(answer.text)["error"]
        assert seen.connections != []
