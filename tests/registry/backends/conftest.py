from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.backends import MemoryBackend, RegistryBackend, SqliteBackend


@pytest.fixture(params=["memory", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RegistryBackend]:
    """Every backend, started; the contract suite runs over each."""
    store: RegistryBackend
    if request.param == "memory":
        store = MemoryBackend()
    else:
        store = SqliteBackend(tmp_path / "registry.db")
    await store.start()
    try:
        yield store
    finally:
        await store.close()
