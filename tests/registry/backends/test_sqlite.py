from __future__ import annotations

from pathlib import Path

import pytest

from registry.backends import BackendOptions, Scope, SqliteBackend, create_backend
from registry.errors import BackendUnavailable
from tests.registry.backends.test_contract import agent

pytestmark = pytest.mark.anyio


async def test_registrations_survive_a_restart_with_health_reset(tmp_path: Path) -> None:
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
        assert restored.health == "critical"  # re-established by checks, not disk
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
