"""Registry services on Consul: stateless replicas, the gateway's watch, outages over HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from gateway.watcher import RouteWatcher
from registry.backends.consul import ConsulBackend, ConsulSettings
from registry.client import RegistryClient
from registry.models import AgentQuery, CheckSpec, Instance, Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.registry.backends.test_contract import card
from tests.support.consul_double import ConsulDouble
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

NO_PROBE = CheckSpec(ttl_seconds=30, interval_seconds=0)


def registry_app(consul_url: str) -> object:
    backend = ConsulBackend(ConsulSettings(addr=consul_url, request_timeout=0.5, max_backoff=0.2))
    return create_app(backend, RegistrySettings(url_policy=UrlPolicy.loopback()))


@contextlib.asynccontextmanager
async def two_registries() -> AsyncIterator[tuple[RegistryClient, RegistryClient]]:
    double = ConsulDouble(min_deregister_after=0.0)
    async with (
        serve(double.app()) as consul_url,
        serve(registry_app(consul_url)) as a,
        serve(registry_app(consul_url)) as b,
        httpx.AsyncClient(trust_env=False, timeout=10) as http,
    ):
        yield RegistryClient(a, http=http), RegistryClient(b, http=http)


def tool_server(n: int) -> Registration:
    tools = [{"name": "add", "inputSchema": {"type": "object"}}]
    return Registration(
        kind=Kind.MCP_SERVER, url=f"http://127.0.0.1:{9100 + n}/mcp", tools=tools, check=NO_PROBE
    )


def an_agent(n: int) -> Registration:
    return Registration(
        kind=Kind.A2A_AGENT,
        url=f"http://127.0.0.1:{9000 + n}/",
        card=card("researcher", [("search", ["docs"])]),
        check=NO_PROBE,
    )


def view(instances: list[Instance]) -> list[tuple[str, str, str, str, int]]:
    return [(i.service, i.id, i.url, i.health.value, i.modify_index) for i in instances]


async def test_two_registry_processes_on_one_consul_agree_on_every_registration() -> None:
    async with two_registries() as (a, b):
        for n in range(6):
            writer = (a, b)[n % 2]
            if n % 3:
                await writer.register("calc", f"calc-{n}", tool_server(n))
            else:
                await writer.register("researcher", f"researcher-{n}", an_agent(n))
            await (b, a)[n % 2].heartbeat(
                *(("calc", f"calc-{n}") if n % 3 else ("researcher", f"researcher-{n}"))
            )
            left, right = await a.all_instances(), await b.all_instances()
            assert view(left.value) == view(right.value)
            assert left.index == right.index
            assert len(left.value) == n + 1
        await b.deregister("calc", "calc-1")
        assert view((await a.all_instances()).value) == view((await b.all_instances()).value)
        assert [i.id for i in (await a.agents(AgentQuery())).value] == [
            "researcher-0",
            "researcher-3",
        ]
        assert (await a.agents(AgentQuery())).index == (await b.agents(AgentQuery())).index


async def test_the_gateway_route_table_follows_a_change_within_a_second() -> None:
    async with (
        two_registries() as (a, b),
        anyio.create_task_group() as tg,
    ):
        watcher = RouteWatcher(b, wait=30)
        tg.start_soon(watcher.run)
        with anyio.fail_after(5):
            await watcher.loaded.wait()
        with watcher.subscribe() as updates:
            await a.register("calc", "calc-1", tool_server(1))
            changed = time.monotonic()
            await a.heartbeat("calc", "calc-1")  # registered through A, watched through B
            with anyio.fail_after(1.0):  # the deadline the issue sets
                async for table in updates:
                    if table.routable_services.get("calc"):
                        break
            passing = time.monotonic() - changed
            await a.deregister("calc", "calc-1")
            changed = time.monotonic()
            with anyio.fail_after(1.0):
                async for table in updates:
                    if "calc" not in table.services:
                        break
            gone = time.monotonic() - changed
        print(f"\nroute table followed: {passing * 1000:.0f} ms (up), {gone * 1000:.0f} ms (gone)")
        tg.cancel_scope.cancel()


async def test_consul_down_reads_serve_the_last_state_and_writes_get_a_503() -> None:
    port = free_port()
    double = ConsulDouble()
    async with (
        httpx.AsyncClient(trust_env=False, timeout=10) as http,
        serve(registry_app(f"http://127.0.0.1:{port}")) as url,
    ):
        client = RegistryClient(url, http=http)
        async with serve(double.app(), port=port):
            await client.register("calc", "calc-1", tool_server(1))
            await http.get(url + "/v1/instances")
        # Consul is gone: the last state is served, marked stale in the metrics.
        listed = await http.get(url + "/v1/instances")
        assert listed.status_code == 200
        assert [i["id"] for i in listed.json()] == ["calc-1"]
        refused = await http.put(
            url + "/v1/services/calc/instances/calc-2",
            json=tool_server(2).model_dump(mode="json"),
        )
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert "consul" in refused.json()["detail"]
        metrics = (await http.get(url + "/metrics")).text
        stale = next(
            line
            for line in metrics.splitlines()
            if line.startswith("meshgate_registry_store_stale_seconds ")
        )
        assert float(stale.split()[1]) > 0


async def test_a_registry_whose_consul_never_answered_says_so_with_a_503() -> None:
    async with (
        httpx.AsyncClient(trust_env=False, timeout=10) as http,
        serve(registry_app(f"http://127.0.0.1:{free_port()}")) as url,
    ):
        listed = await http.get(url + "/v1/instances")
        assert listed.status_code == 503
        assert listed.json()["status"] == 503
        assert (await http.get(url + "/healthz")).status_code == 200


async def test_a_gateway_learns_that_the_registrys_consul_is_down_and_back() -> None:
    # The registry itself answers throughout; its answers say how stale they
    # are (X-Meshgate-Stale-Seconds), and the gateway's table is marked stale.
    # The watch is a long one: the registry ends it when Consul goes and returns.
    port = free_port()
    double = ConsulDouble()
    async with (
        httpx.AsyncClient(trust_env=False, timeout=10) as http,
        serve(registry_app(f"http://127.0.0.1:{port}")) as url,
        anyio.create_task_group() as tg,
    ):
        registry = RegistryClient(url, http=http)
        watcher = RouteWatcher(registry, wait=30)

        async def stale() -> bool:
            return watcher.stale

        async with serve(double.app(), port=port):
            await registry.register("calc", "calc-1", tool_server(1))
            tg.start_soon(watcher.run)
            with anyio.fail_after(5):
                await watcher.loaded.wait()
            assert not watcher.stale
            assert (await http.get(url + "/v1/instances")).headers.get(
                "x-meshgate-stale-seconds"
            ) is None
        await eventually(stale, bool, within=5)
        assert watcher.staleness > 0
        assert "calc" in watcher.table.services  # the last view still routes
        answer = await http.get(url + "/v1/instances")
        assert float(answer.headers["x-meshgate-stale-seconds"]) > 0
        async with serve(double.app(), port=port):
            await eventually(stale, lambda now: not now, within=5)
            assert watcher.staleness == 0
        tg.cancel_scope.cancel()
