from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from registry.backends import BackendOptions, Scope, SqliteBackend, create_backend
from registry.errors import BackendUnavailable
from registry.models import CheckSpec, Health
from tests.registry.backends.test_contract import agent

pytestmark = pytest.mark.anyio


async def test_registrations_survive_a_restart_with_their_check_status(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "registry.db"
    first = SqliteBackend(path)
    await first.start()
    record, _ = await first.register("researcher", "r-1", agent(tags=["a"]), owner="key-a")
    await first.heartbeat("researcher", "r-1", owner="key-a")
    await first.register("calc", "c-1", agent(port=9001), owner=None)
    await first.deregister("calc", "c-1", owner=None)
    seen_index = first.index(Scope.everything())
    await first.close()

    second = SqliteBackend(path)
    await second.start()
    try:
        restored = await second.get("researcher", "r-1")
        assert restored.card == record.card
        assert restored.tags == ["a"]
        assert restored.create_index == record.create_index
        assert restored.health == "passing"  # as its last heartbeat left it
        assert [s.name for s in (await second.services()).value] == ["researcher"]
        assert second.index(Scope.everything()) > seen_index
        assert second.index(Scope("researcher")) > seen_index
        # The owner is durable too.
        with pytest.raises(Exception, match="another API key"):
            await second.deregister("researcher", "r-1", owner="key-b")
    finally:
        await second.close()


async def test_full_synchronous_mode_is_selectable(tmp_path: Path) -> None:
    store = create_backend(
        "sqlite", BackendOptions(data_path=tmp_path / "r.db", settings={"synchronous": "full"})
    )
    assert isinstance(store, SqliteBackend)
    await store.start()
    try:
        await store.register("researcher", "r-1", agent(), owner=None)
    finally:
        await store.close()


async def test_writes_to_a_closed_store_fail_cleanly(tmp_path: Path) -> None:
    store = SqliteBackend(tmp_path / "r.db")
    await store.start()
    await store.close()
    with pytest.raises(BackendUnavailable):
        await store.register("researcher", "r-1", agent(), owner=None)
    # A refused write is not half-applied in memory.
    assert (await store.instances("researcher")).value == []


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_restored_status_keeps_a_fresh_ttl_and_lapses_without_heartbeats(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.db"
    clock = Clock()
    check = CheckSpec(interval_seconds=0, ttl_seconds=10)
    first = SqliteBackend(path, clock=clock)
    await first.start()
    await first.register("researcher", "up", agent(check=check), owner=None)
    await first.heartbeat("researcher", "up", owner=None)
    await first.register("researcher", "down", agent(9001, check=check), owner=None)
    await first.heartbeat("researcher", "down", status=Health.WARNING, note="slow", owner=None)
    await first.heartbeat("researcher", "down", status=Health.CRITICAL, note="ill", owner=None)
    await first.close()

    clock.now += 8  # most of the TTL passed while the registry was down
    second = SqliteBackend(path, clock=clock)
    await second.start()
    try:
        up = await second.get("researcher", "up")
        assert up.health == "passing"
        down = await second.get("researcher", "down")
        assert down.health == "critical"
        assert [(c.name, c.output) for c in down.checks] == [("ttl", "ill")]
        clock.now += 8  # the TTL counts from the restart, not from the last heartbeat
        second.reap()
        assert (await second.get("researcher", "up")).health == "passing"
        clock.now += 3
        second.reap()
        lapsed = await second.get("researcher", "up")
        assert lapsed.health == "critical"
        assert lapsed.checks[0].output == "TTL expired"
    finally:
        await second.close()

    third = SqliteBackend(path, clock=clock)  # the lapse was stored as well
    await third.start()
    try:
        assert (await third.get("researcher", "up")).health == "critical"
    finally:
        await third.close()


async def test_a_store_written_before_check_states_were_kept_opens(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    first = SqliteBackend(path)
    await first.start()
    await first.register("researcher", "r-1", agent(), owner=None)
    await first.heartbeat("researcher", "r-1", owner=None)
    await first.close()
    with sqlite3.connect(path) as db:  # the schema of earlier versions
        db.execute("ALTER TABLE instances DROP COLUMN checks")

    second = SqliteBackend(path)
    await second.start()
    try:
        restored = await second.get("researcher", "r-1")
        assert restored.health == "critical"  # nothing stored: its checks start over
        await second.heartbeat("researcher", "r-1", owner=None)
        assert (await second.get("researcher", "r-1")).health == "passing"
    finally:
        await second.close()
