"""RouteWatcher subscriptions against a real registry (in-process, on a loopback socket)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from gateway.table import RouteTable
from gateway.watcher import RouteWatcher
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.models import Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.support.live import serve

pytestmark = pytest.mark.anyio

TOOL = {"name": "evaluate", "inputSchema": {"type": "object"}}


@contextlib.asynccontextmanager
async def watched() -> AsyncIterator[tuple[RouteWatcher, RegistryClient]]:
    settings = RegistrySettings(url_policy=UrlPolicy.loopback())
    async with (
        serve(create_app(MemoryBackend(), settings)) as url,
        httpx.AsyncClient(timeout=10, trust_env=False) as http,
        anyio.create_task_group() as tg,
    ):
        registry = RegistryClient(url, http=http)
        watcher = RouteWatcher(registry, wait=5)
        tg.start_soon(watcher.run)
        with anyio.fail_after(5):
            await watcher.loaded.wait()
        yield watcher, registry
        tg.cancel_scope.cancel()


async def register(registry: RegistryClient, instance: str) -> None:
    registration = Registration(
        kind=Kind.MCP_SERVER, url=f"http://127.0.0.1:9/{instance}", tools=[TOOL]
    )
    await registry.register("calc", instance, registration)


async def test_each_subscriber_gets_the_new_table_after_a_swap() -> None:
    async with watched() as (watcher, registry):
        with watcher.subscribe() as first, watcher.subscribe() as second:
            await register(registry, "calc-1")
            with anyio.fail_after(5):
                table = await anext(first)
                assert await anext(second) is watcher.table
            assert isinstance(table, RouteTable)
            assert "calc" in table.services


async def test_swaps_while_busy_coalesce_into_the_newest_table() -> None:
    async with watched() as (watcher, registry):
        with watcher.subscribe() as updates:
            await register(registry, "calc-1")
            await register(registry, "calc-2")
            # The subscriber was busy: both swaps (or one) wake it, with the newest table.
            with anyio.fail_after(5):
                while len(watcher.table.services.get("calc", ())) < 2:
                    await anext(updates)
            latest = watcher.table
            await registry.deregister("calc", "calc-1")
            with anyio.fail_after(5):
                table = await anext(updates)
            assert table is not latest
            assert table.index > latest.index


async def test_a_closed_subscription_is_forgotten() -> None:
    async with watched() as (watcher, registry):
        updates = watcher.subscribe()
        updates.close()
        other = watcher.subscribe()
        await register(registry, "calc-1")
        with anyio.fail_after(5):
            await anext(other)
        assert not updates._changed.is_set()
