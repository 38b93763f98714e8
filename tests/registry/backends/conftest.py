from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.backends import MemoryBackend, RegistryBackend, SqliteBackend
from tests.registry.consul.support import consul_backend

#: Contract tests that feed probe results in: a store that runs its own HTTP
#: checks (Consul) has its probe behaviour tested in tests/registry/consul/.
_PROBE_RESULT_TESTS = {
    "test_instance_is_worst_of_ttl_and_probe",
    "test_probe_thresholds_decide_transitions",
}
#: A real Consul reaps critical services no sooner than a minute after the limit.
_REAL_CONSUL_SLOW = {"test_critical_instance_is_deregistered_after_the_limit"}


@pytest.fixture(params=["memory", "sqlite", "consul-double", "consul-agent"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RegistryBackend]:
    """Every backend, started; the contract suite runs over each."""
    test = request.function.__name__
    if request.param.startswith("consul") and test in _PROBE_RESULT_TESTS:
        pytest.skip("Consul runs the probe as its own HTTP check (tests/registry/consul/)")
    if request.param == "consul-agent":
        if not os.environ.get("CONSUL_HTTP_ADDR"):
            pytest.skip("CONSUL_HTTP_ADDR is not set: no real Consul to run the contract on")
        if test in _REAL_CONSUL_SLOW:
            pytest.skip("a real Consul reaps critical services a minute after the limit at least")
    if request.param.startswith("consul"):
        async with consul_backend(real=request.param == "consul-agent") as store:
            yield store
        return
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
