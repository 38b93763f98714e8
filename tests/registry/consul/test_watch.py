"""Blocking-query watches of the consul backend: Consul's index rules, faults, loop lag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial

import anyio
import pytest

from registry.backends import Scope
from registry.backends.consul import ConsulBackend, ConsulSettings
from registry.backends.consul.watch import Backoff, IndexCursor, jittered_wait
from registry.errors import BackendUnavailable
from registry.models import AgentQuery, CheckSpec, Kind
from tests.registry.backends.test_contract import agent
from tests.support.consul_double import ConsulDouble, running, running_in_thread
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

EVERYTHING = Scope.everything()


def settings(url: str) -> ConsulSettings:
    return ConsulSettings(addr=url, request_timeout=0.3, max_backoff=0.2)


@pytest.fixture
async def consul() -> AsyncIterator[tuple[ConsulDouble, ConsulBackend]]:
    async with running() as (double, url):
        store = ConsulBackend(settings(url))
        await store.start()
        try:
            yield double, store
        finally:
            await store.close()


def test_the_cursor_resets_when_the_index_goes_back_and_never_uses_zero() -> None:
    cursor = IndexCursor()
    assert cursor.advance("0")
    assert cursor.value == 1
    assert cursor.advance(40)
    assert cursor.value == 40
    assert not cursor.advance(7)
    assert cursor.value == 0  # the next query does not block: start over


def test_waits_carry_jitter_and_backoff_grows_to_its_cap() -> None:
    waits = {jittered_wait(10.0) for _ in range(20)}
    assert len(waits) > 1
    assert all(9375 <= int(w.removesuffix("ms")) <= 10_000 for w in waits)
    backoff = Backoff(base=0.1, cap=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays[0] <= 0.1
    assert max(delays) <= 1.0
    assert delays[-1] >= 0.5


async def held(double: ConsulDouble) -> int:
    return double.held


async def test_no_event_loop_stall_while_blocking_queries_are_held() -> None:
    with running_in_thread() as (double, url):
        store = ConsulBackend(settings(url))
        await store.start()
        await store.register("researcher", "r-1", agent(), owner=None)
        index = store.index(EVERYTHING)
        lags: list[float] = []

        async def ticker() -> None:
            while True:
                started = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - started - 0.005)

        async with anyio.create_task_group() as tg:
            for _ in range(20):  # twenty gateways watching through this registry
                tg.start_soon(store.wait, EVERYTHING, index, 1.5)
            await eventually(lambda: held(double), lambda n: n >= 40)  # two queries each
            tg.start_soon(ticker)
            await eventually(lambda: held(double), lambda n: n == 0, within=5)
            tg.cancel_scope.cancel()
        await store.close()
    print(f"\nmax event-loop lag, 20 watches held: {max(lags) * 1000:.1f} ms ({len(lags)} ticks)")
    assert len(lags) > 20
    assert max(lags) < 0.05


async def test_a_watch_survives_consul_stopping_and_restarting() -> None:
    double = ConsulDouble(min_deregister_after=0.0)
    port = free_port()
    store = ConsulBackend(settings(f"http://127.0.0.1:{port}"))
    woke: list[int] = []
    done = anyio.Event()
    async with anyio.create_task_group() as tg:
        async with serve(double.app(), port=port):
            await store.start()
            await store.register("researcher", "r-1", agent(), owner=None)
            index = store.index(EVERYTHING)

            async def watch() -> None:
                # Each wake-up asks again, until the index moves.
                while not woke or woke[-1] == index:
                    woke.append(await store.wait(EVERYTHING, index, 30))
                done.set()

            tg.start_soon(watch)
            await eventually(lambda: held(double), lambda n: n >= 1)
        # Consul is down: reads serve the last state, marked stale; writes fail.
        assert (await store.get("researcher", "r-1")).id == "r-1"
        assert store.staleness() > 0
        with pytest.raises(BackendUnavailable) as refused:
            await store.register("researcher", "r-2", agent(port=9001), owner=None)
        assert refused.value.status == 503

        # The watch ended once, with that news (its answer is stale), not with a change;
        # asked again, it waits while Consul stays down.
        async def wakes() -> list[int]:
            return list(woke)

        await eventually(wakes, lambda seen: seen == [index])
        async with serve(double.app(), port=port):  # back, with its data
            await store.register("researcher", "r-2", agent(port=9001), owner=None)
            with anyio.fail_after(5):
                await done.wait()
            assert woke[-1] > index
            assert set(woke[:-1]) == {index}  # Consul back is news too (at most once more)
            assert len(woke) <= 3
            assert store.staleness() == 0
    await store.close()


async def test_an_index_that_goes_back_is_reported_and_the_watch_starts_over(
    consul: tuple[ConsulDouble, ConsulBackend],
) -> None:
    double, store = consul
    await store.register("researcher", "r-1", agent(), owner=None)
    await store.register("researcher", "r-2", agent(port=9001), owner=None)
    index = store.index(EVERYTHING)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            woke: list[int] = []

            async def watch() -> None:
                woke.append(await store.wait(EVERYTHING, index, 30))

            tg.start_soon(watch)
            await eventually(lambda: held(double), lambda n: n >= 1)
            double.forget()  # a Consul restored from an older snapshot
    assert woke[0] < index  # the registry passes the regression on; clients reset
    assert (await store.all_instances()).value == []
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(store.register, "researcher", "r-3", agent(), owner=None))
        with anyio.fail_after(5):
            assert await store.wait(EVERYTHING, woke[0], 30) > woke[0]


async def test_slow_answers_serve_stale_reads_refuse_writes_and_recover(
    consul: tuple[ConsulDouble, ConsulBackend],
) -> None:
    double, store = consul
    await store.register("researcher", "r-1", agent(), owner=None)
    double.delay = 2.0  # far beyond the 0.3 s request timeout
    started = time.monotonic()
    assert [i.id for i in (await store.instances("researcher")).value] == ["r-1"]
    assert (await store.agents(AgentQuery())).value
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await store.heartbeat("researcher", "r-1", owner=None)
    assert store.staleness() > 0
    # A watch held meanwhile neither fails nor spins: a handful of attempts a second.
    asked = len(double.requests)
    index = store.index(EVERYTHING)
    assert await store.wait(EVERYTHING, index, 1.0) == index
    assert len(double.requests) - asked <= 10
    assert time.monotonic() - started < 10
    double.delay = 0.0
    await eventually(lambda: _fresh(store), bool)


async def _fresh(store: ConsulBackend) -> bool:
    await store.all_instances()
    return store.staleness() == 0


async def test_an_instance_consul_reaped_is_forgotten_and_the_agent_index_moves_on(
    consul: tuple[ConsulDouble, ConsulBackend],
) -> None:
    double, store = consul
    agents = Scope.of_kind(Kind.A2A_AGENT)
    short = CheckSpec(ttl_seconds=0.2, interval_seconds=0, deregister_critical_after_seconds=0.3)
    await store.register("researcher", "r-2", agent(port=9001), owner=None)
    await store.register("researcher", "r-1", agent(check=short), owner=None)
    await store.heartbeat("researcher", "r-1", owner=None)  # its TTL lapses later, at a top index
    before = store.index(agents)
    service_before = await store.wait(Scope("researcher"), 0, 0)
    seen = [before]
    with anyio.fail_after(5):
        while [i.id for i in (await store.agents(AgentQuery())).value] != ["r-2"]:
            seen.append(await store.wait(agents, seen[-1], 1.0))
    seen.append(store.index(agents))
    # Never back, though the reaped instance's check held the greatest index.
    assert seen == sorted(seen)
    assert seen[-1] > before
    assert await store.wait(Scope("researcher"), 0, 0) > service_before
    assert "meshgate/instances/researcher/r-1" not in double.state.kv
