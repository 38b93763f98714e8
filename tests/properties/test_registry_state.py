"""A stateful model of the registry: register, heartbeat, probe, expire, deregister, restart.

The backend under test is the embedded default (SQLite, reopened from its file
on restart) on a clock the test moves. A plain model predicts, step by step,
which instances exist and their health under Consul's rules (every check of a
new instance starts critical; a heartbeat sets the TTL check, which lapses to
critical; probe results flip the probe check after their thresholds; the
instance is the worst of its checks; one critical for
``deregister_critical_after_seconds`` is removed; after a restart each check
keeps its status, with a fresh TTL and its probe counters reset, and the
critical clock of a critical instance starts again). Invariants after each step:
every acknowledged registration that was not removed survives (restarts
included), health is what the rules say, the index never goes back, and no
critical instance is in a passing list or routable in a route table built
from the registry's answer.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gateway.table import RouteTable
from registry.backends import Scope, SqliteBackend
from registry.errors import NotFound
from registry.models import CheckSpec, Health, InstanceKey, Kind, Registration
from tests.fuzz.openapi import scale

T = TypeVar("T")

SERVICES = ("calc", "web")
INSTANCES = ("a", "b")
URLS = ("http://127.0.0.1:9001/mcp", "http://127.0.0.1:9002/mcp")


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Expected:
    """What the rules say of one instance."""

    url: str
    check: CheckSpec
    ttl_status: Health = Health.CRITICAL
    ttl_deadline: float = 0.0
    probe_status: Health | None = None
    successes: int = 0
    failures: int = 0
    health: Health = Health.CRITICAL
    critical_since: float | None = None

    def aggregate(self) -> Health:
        states = [self.ttl_status] + ([self.probe_status] if self.probe_status else [])
        return Health.worst(states)

    def settle(self, now: float) -> None:
        """Recompute health after a check moved; the critical clock starts on entry."""
        health = self.aggregate()
        if health is not self.health:
            self.health = health
            self.critical_since = now if health is Health.CRITICAL else None

    def start_over(self, now: float) -> None:
        """A new registration: every check critical."""
        self.ttl_status, self.ttl_deadline = Health.CRITICAL, now + self.check.ttl_seconds
        self.probe_status = Health.CRITICAL if self.check.interval_seconds > 0 else None
        self.successes = self.failures = 0
        self.health, self.critical_since = Health.CRITICAL, now

    def restored(self, now: float) -> None:
        """A restart: each check keeps its status, the TTL runs anew, counters reset."""
        self.ttl_deadline = now + self.check.ttl_seconds
        self.successes = self.failures = 0
        self.health = self.aggregate()
        self.critical_since = now if self.health is Health.CRITICAL else None


checks = st.builds(
    CheckSpec,
    ttl_seconds=st.sampled_from([5.0, 30.0]),
    interval_seconds=st.sampled_from([0.0, 5.0]),
    deregister_critical_after_seconds=st.sampled_from([None, 10.0, 60.0]),
    successes_before_passing=st.integers(1, 2),
    failures_before_critical=st.integers(1, 3),
)
keys = st.tuples(st.sampled_from(SERVICES), st.sampled_from(INSTANCES))


class RegistryModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="registry-state-"))
        self.clock = Clock()
        self.expected: dict[InstanceKey, Expected] = {}
        self.backend = self._open()
        self.last_index = self.backend.index(Scope.everything())

    # -- plumbing --------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def _open(self) -> SqliteBackend:
        backend = SqliteBackend(self.dir / "registry.db", clock=self.clock)
        self.run(backend.start())
        return backend

    def teardown(self) -> None:
        self.run(self.backend.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- rules -----------------------------------------------------------------

    @rule(key=keys, url=st.sampled_from(URLS), check=checks)
    def register(self, key: InstanceKey, url: str, check: CheckSpec) -> None:
        registration = Registration(kind=Kind.MCP_SERVER, url=url, tools=[], check=check)
        now = self.clock.now
        self.run(self.backend.register(*key, registration, owner=None))
        previous = self.expected.get(key)
        entry = Expected(url=url, check=check)
        if previous is not None and previous.url == url:
            # The same endpoint again keeps its health, so routing does not flap.
            entry.ttl_status = previous.ttl_status
            entry.ttl_deadline = now + check.ttl_seconds
            if check.interval_seconds > 0:
                entry.probe_status = previous.probe_status or Health.CRITICAL
            entry.health = previous.health
            entry.critical_since = previous.critical_since
            entry.settle(now)
        else:
            entry.start_over(now)
        self.expected[key] = entry

    @rule(key=keys, status=st.sampled_from(list(Health)))
    def heartbeat(self, key: InstanceKey, status: Health) -> None:
        entry = self.expected.get(key)
        if entry is None:
            with pytest.raises(NotFound):
                self.run(self.backend.heartbeat(*key, status=status, owner=None))
            return
        self.run(self.backend.heartbeat(*key, status=status, owner=None))
        entry.ttl_deadline = self.clock.now + entry.check.ttl_seconds
        entry.ttl_status = status
        entry.settle(self.clock.now)

    @rule(key=keys, ok=st.booleans())
    def probe(self, key: InstanceKey, ok: bool) -> None:
        self.run(self.backend.record_probe(*key, ok=ok, output="ok" if ok else "refused"))
        entry = self.expected.get(key)
        if entry is None or entry.probe_status is None:
            return
        if ok:
            entry.successes, entry.failures = entry.successes + 1, 0
            if entry.successes >= entry.check.successes_before_passing:
                entry.probe_status = Health.PASSING
        else:
            entry.failures, entry.successes = entry.failures + 1, 0
            if entry.failures >= entry.check.failures_before_critical:
                entry.probe_status = Health.CRITICAL
        entry.settle(self.clock.now)

    @rule(key=keys)
    def deregister(self, key: InstanceKey) -> None:
        if key not in self.expected:
            with pytest.raises(NotFound):
                self.run(self.backend.deregister(*key, owner=None))
            return
        self.run(self.backend.deregister(*key, owner=None))
        del self.expected[key]

    @rule(seconds=st.sampled_from([0.5, 3.0, 6.0, 11.0, 31.0, 61.0]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        now = self.clock.now
        self.backend.reap()
        for entry in self.expected.values():
            if entry.ttl_deadline <= now and entry.ttl_status is not Health.CRITICAL:
                entry.ttl_status = Health.CRITICAL
                entry.settle(now)
        for key, entry in list(self.expected.items()):
            after = entry.check.deregister_critical_after_seconds
            since = entry.critical_since
            if after is not None and since is not None and since + after <= now:
                del self.expected[key]

    @rule()
    def restart(self) -> None:
        self.run(self.backend.close())
        self.backend = self._open()
        for entry in self.expected.values():
            entry.restored(self.clock.now)

    # -- invariants ------------------------------------------------------------

    @invariant()
    def acknowledged_registrations_survive(self) -> None:
        found = self.run(self.backend.all_instances()).value
        assert {i.key for i in found} == set(self.expected)

    @invariant()
    def health_follows_the_rules(self) -> None:
        for instance in self.run(self.backend.all_instances()).value:
            expected = self.expected[instance.key]
            assert instance.health is expected.health, (instance.key, instance.checks, expected)
            assert instance.url == expected.url

    @invariant()
    def a_critical_instance_is_never_passing_nor_routed(self) -> None:
        for service in SERVICES:
            passing = self.run(self.backend.instances(service, passing_only=True)).value
            assert all(i.health is Health.PASSING for i in passing)
        snapshot = self.run(self.backend.all_instances())
        table = RouteTable.build(snapshot.value, snapshot.index)
        for service in SERVICES:
            for route in table.routes(service):
                assert route.health is not Health.CRITICAL
                assert self.expected[route.key].health is not Health.CRITICAL

    @invariant()
    def the_index_never_goes_back(self) -> None:
        index = self.backend.index(Scope.everything())
        assert index >= self.last_index
        self.last_index = index


RegistryModel.TestCase.settings = settings(
    max_examples=100 * scale(),
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRegistryModel = RegistryModel.TestCase


@pytest.mark.anyio
async def test_a_re_registration_that_turns_an_instance_critical_starts_its_critical_clock() -> (
    None
):
    # Found by the model: adding a probe to a passing instance made it critical
    # with no critical clock, so deregister_critical_after never removed it.
    clock = Clock(0.0)
    backend = SqliteBackend(Path(tempfile.mkdtemp(prefix="registry-state-")) / "r.db", clock=clock)
    await backend.start()
    try:
        without_probe = CheckSpec(interval_seconds=0, deregister_critical_after_seconds=10)
        with_probe = CheckSpec(interval_seconds=5, deregister_critical_after_seconds=10)
        for check in (without_probe, with_probe):
            registration = Registration(kind=Kind.MCP_SERVER, url=URLS[0], tools=[], check=check)
            await backend.register("calc", "a", registration, owner=None)
            if check is without_probe:
                await backend.heartbeat("calc", "a", owner=None)
        assert (await backend.get("calc", "a")).health is Health.CRITICAL
        clock.now = 11.0
        backend.reap()
        with pytest.raises(NotFound):
            await backend.get("calc", "a")
    finally:
        await backend.close()
        shutil.rmtree(backend.path.parent, ignore_errors=True)
