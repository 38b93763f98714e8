"""A registry restarted after an outage knows no health yet; the gateway waits for it.

The SQLite backend keeps registrations, not health, across a restart: every
instance is critical until its next heartbeat. A gateway that took that table
at once routed nothing for that moment (the chaos run saw 503s and unknown
tools right after a 10 s registry outage). Now, for ``settle`` seconds after
the registry is reachable again, a table routing fewer instances waits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from gateway.watcher import RouteWatcher, _routable
from registry.backends import SqliteBackend
from registry.client import RegistryClient
from registry.models import CheckSpec, Health, Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

TOOL = {"name": "evaluate", "inputSchema": {"type": "object"}}


@contextlib.asynccontextmanager
async def _restarted_registry(
    tmp_path: Path, settle: float
) -> AsyncIterator[tuple[RouteWatcher, RegistryClient]]:
    """A watcher that saw calc-1 passing, then the registry down and back on its file."""
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
        async with serve(create_app(SqliteBackend(db), settings), port=port):
            tg.start_soon(watcher.run)
            registration = Registration(
                kind=Kind.MCP_SERVER,
                url=url + "/calc",
                tools=[TOOL],
                check=CheckSpec(ttl_seconds=600, interval_seconds=0),
            )
            await registry.register("calc", "calc-1", registration)
            await registry.heartbeat("calc", "calc-1")
            await eventually(_count(watcher), lambda n: n == 1)
        await eventually(_stale(watcher), bool)
        async with serve(create_app(SqliteBackend(db), settings), port=port):
            await eventually(_stale(watcher), lambda stale: not stale)
            yield watcher, registry
        tg.cancel_scope.cancel()


def _count(watcher: RouteWatcher) -> Callable[[], Awaitable[int]]:
    async def probe() -> int:
        return _routable(watcher.table)

    return probe


def _stale(watcher: RouteWatcher) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return watcher.stale

    return probe


async def test_a_restarted_registrys_all_critical_table_waits_for_heartbeats(
    tmp_path: Path,
) -> None:
    async with _restarted_registry(tmp_path, settle=30) as (watcher, registry):
        (instance,) = (await registry.all_instances()).value
        assert instance.health == Health.CRITICAL  # what the restarted registry says
        assert _routable(watcher.table) == 1  # what the gateway still routes
        await registry.heartbeat("calc", "calc-1")
        index = (await registry.all_instances()).index

        async def table_index() -> int:
            return watcher.table.index

        await eventually(table_index, lambda seen: seen >= index)  # the registry's table now
        assert _routable(watcher.table) == 1


async def test_after_the_settle_time_the_registrys_table_wins(tmp_path: Path) -> None:
    async with _restarted_registry(tmp_path, settle=0.5) as (watcher, _):
        await eventually(_count(watcher), lambda n: n == 0, within=5)
