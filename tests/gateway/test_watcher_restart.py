"""A registry back from an outage knowing less than before; the gateway waits for it.

A registry on the memory backend restarts empty, and a store written before
check states were kept restarts every instance critical: a gateway that took
such a table at once routed nothing for that moment (the chaos run saw 503s
and unknown tools right after a 10 s registry outage). Now, for ``settle``
seconds after the registry is reachable again, a table routing fewer
instances waits. (The SQLite backend keeps check states across a restart: its
table routes the same instances at once.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from gateway.watcher import RouteWatcher, _routable
from registry.backends import MemoryBackend, RegistryBackend, SqliteBackend
from registry.client import RegistryClient
from registry.models import CheckSpec, Health, Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

TOOL = {"name": "evaluate", "inputSchema": {"type": "object"}}


def _calc(url: str) -> Registration:
    return Registration(
        kind=Kind.MCP_SERVER,
        url=url + "/calc",
        tools=[TOOL],
        check=CheckSpec(ttl_seconds=600, interval_seconds=0),
    )


@contextlib.asynccontextmanager
async def _restarted_registry(
    tmp_path: Path, settle: float, backend: Callable[[Path], RegistryBackend]
) -> AsyncIterator[tuple[RouteWatcher, RegistryClient, str]]:
    """A watcher that saw calc-1 passing, then the registry down and back (a new
    ``backend`` on the same file)."""
    port = free_port()
    settings = RegistrySettings(url_policy=UrlPolicy.loopback())
    db = tmp_path / "registry.db"
    url = f"http://127.0.0.1:{port}"
    async with (
        httpx.AsyncClient(timeout=5, trust_env=False) as http,
        anyio.create_task_group() as tg,
    ):
        registry = RegistryClient(url, http=http)
        watcher = RouteWatcher(registry, wait=1, settle=settle)
        async with serve(create_app(backend(db), settings), port=port):
            tg.start_soon(watcher.run)
            await registry.register("calc", "calc-1", _calc(url))
            await registry.heartbeat("calc", "calc-1")
            await eventually(_count(watcher), lambda n: n == 1)
        await eventually(_stale(watcher), bool)
        async with serve(create_app(backend(db), settings), port=port):
            await eventually(_stale(watcher), lambda stale: not stale)
            yield watcher, registry, url
        tg.cancel_scope.cancel()


def _count(watcher: RouteWatcher) -> Callable[[], Awaitable[int]]:
    async def probe() -> int:
        return _routable(watcher.table)

    return probe


def _stale(watcher: RouteWatcher) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return watcher.stale

    return probe


def _memory(db: Path) -> RegistryBackend:
    return MemoryBackend()


async def test_a_registry_back_knowing_less_waits_for_its_instances(tmp_path: Path) -> None:
    async with _restarted_registry(tmp_path, 30, _memory) as (watcher, registry, url):
        assert (await registry.all_instances()).value == []  # what the registry says
        assert _routable(watcher.table) == 1  # what the gateway still routes
        # The instance registers again (as agents do) and heartbeats.
        await registry.register("calc", "calc-1", _calc(url))
        await registry.heartbeat("calc", "calc-1")
        index = (await registry.all_instances()).index

        async def table_index() -> int:
            return watcher.table.index

        await eventually(table_index, lambda seen: seen >= index)  # the registry's table now
        assert _routable(watcher.table) == 1


async def test_after_the_settle_time_the_registrys_table_wins(tmp_path: Path) -> None:
    async with _restarted_registry(tmp_path, 0.5, _memory) as (watcher, _, _):
        await eventually(_count(watcher), lambda n: n == 0, within=5)


async def test_a_restarted_sqlite_registry_routes_what_it_routed_at_once(tmp_path: Path) -> None:
    async with _restarted_registry(tmp_path, 0.5, SqliteBackend) as (watcher, registry, _):
        (instance,) = (await registry.all_instances()).value
        assert instance.health == Health.PASSING  # its check state came back from disk
        index = (await registry.all_instances()).index

        async def table_index() -> int:
            return watcher.table.index

        await eventually(table_index, lambda seen: seen >= index)
        assert _routable(watcher.table) == 1
