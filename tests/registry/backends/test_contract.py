"""The contract every registry backend keeps; runs over each backend of conftest."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from registry.backends import RegistryBackend, Scope
from registry.errors import Conflict, Forbidden, NotFound
from registry.models import AgentQuery, CheckSpec, Health, Instance, Kind, Registration
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

NO_PROBE = CheckSpec(ttl_seconds=30, interval_seconds=0)


def card(name: str, skills: list[tuple[str, list[str]]], description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "description": description or f"{name} agent",
        "version": "1.0.0",
        "supportedInterfaces": [
            {
                "url": "http://127.0.0.1:9000/",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            }
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {"id": sid, "name": sid.title(), "description": f"does {sid}", "tags": tags}
            for sid, tags in skills
        ],
    }


def agent(
    port: int = 9000,
    *,
    skills: list[tuple[str, list[str]]] | None = None,
    check: CheckSpec = NO_PROBE,
    description: str = "",
    tags: list[str] | None = None,
) -> Registration:
    return Registration(
        kind=Kind.A2A_AGENT,
        url=f"http://127.0.0.1:{port}/",
        card=card("agent", skills or [("search", ["docs"])], description),
        tags=tags or [],
        check=check,
    )


def tool_server(port: int = 9100, check: CheckSpec = NO_PROBE) -> Registration:
    return Registration(
        kind=Kind.MCP_SERVER,
        url=f"http://127.0.0.1:{port}/mcp",
        tools=[{"name": "add", "inputSchema": {"type": "object"}}],
        check=check,
    )


async def test_new_instance_starts_critical_on_every_check(backend: RegistryBackend) -> None:
    reg = agent(check=CheckSpec(ttl_seconds=30, interval_seconds=10))
    record, created = await backend.register("researcher", "r-1", reg, owner=None)
    assert created
    assert record.health is Health.CRITICAL
    assert {c.name: c.status for c in record.checks} == {
        "ttl": Health.CRITICAL,
        "probe": Health.CRITICAL,
    }
    assert record.card == reg.card
    assert await backend.get("researcher", "r-1") == record


async def test_reregistration_replaces_and_keeps_create_index(backend: RegistryBackend) -> None:
    first, _ = await backend.register("researcher", "r-1", agent(), owner=None)
    second, created = await backend.register("researcher", "r-1", agent(tags=["v2"]), owner=None)
    assert not created
    assert second.tags == ["v2"]
    assert second.create_index == first.create_index
    assert second.modify_index > first.modify_index


async def test_reregistering_same_endpoint_keeps_health(backend: RegistryBackend) -> None:
    await backend.register("researcher", "r-1", agent(), owner=None)
    await backend.heartbeat("researcher", "r-1", owner=None)
    again, _ = await backend.register("researcher", "r-1", agent(tags=["x"]), owner=None)
    assert again.health is Health.PASSING
    moved, _ = await backend.register("researcher", "r-1", agent(port=9001), owner=None)
    assert moved.health is Health.CRITICAL


async def test_unknown_instance_is_not_found_everywhere(backend: RegistryBackend) -> None:
    with pytest.raises(NotFound):
        await backend.get("nobody", "n-1")
    with pytest.raises(NotFound):
        await backend.deregister("nobody", "n-1", owner=None)
    with pytest.raises(NotFound):
        await backend.heartbeat("nobody", "n-1", owner=None)
    await backend.record_probe("nobody", "n-1", ok=True, output="ignored")
    assert (await backend.instances("nobody")).value == []


async def test_deregister_removes_instance(backend: RegistryBackend) -> None:
    await backend.register("researcher", "r-1", agent(), owner=None)
    await backend.deregister("researcher", "r-1", owner=None)
    with pytest.raises(NotFound):
        await backend.get("researcher", "r-1")
    assert (await backend.services()).value == []


async def test_heartbeat_makes_instance_passing_and_carries_status(
    backend: RegistryBackend,
) -> None:
    await backend.register("researcher", "r-1", agent(), owner=None)
    record = await backend.heartbeat("researcher", "r-1", owner=None)
    assert record.health is Health.PASSING
    warned = await backend.heartbeat(
        "researcher", "r-1", status=Health.WARNING, note="queue deep", owner=None
    )
    assert warned.health is Health.WARNING
    assert warned.checks[0].output == "queue deep"


async def test_instance_is_worst_of_ttl_and_probe(backend: RegistryBackend) -> None:
    reg = agent(check=CheckSpec(ttl_seconds=30, interval_seconds=5))
    await backend.register("researcher", "r-1", reg, owner=None)
    beat = await backend.heartbeat("researcher", "r-1", owner=None)
    assert beat.health is Health.CRITICAL  # registered, not yet reachable
    await backend.record_probe("researcher", "r-1", ok=True, output="answered")
    assert (await backend.get("researcher", "r-1")).health is Health.PASSING


async def test_probe_thresholds_decide_transitions(backend: RegistryBackend) -> None:
    check = CheckSpec(interval_seconds=5, successes_before_passing=2, failures_before_critical=2)
    await backend.register("researcher", "r-1", agent(check=check), owner=None)
    await backend.heartbeat("researcher", "r-1", owner=None)

    async def probe_state() -> Health:
        record = await backend.get("researcher", "r-1")
        return next(c.status for c in record.checks if c.name == "probe")

    await backend.record_probe("researcher", "r-1", ok=True, output="ok")
    assert await probe_state() is Health.CRITICAL
    await backend.record_probe("researcher", "r-1", ok=True, output="ok")
    assert await probe_state() is Health.PASSING
    await backend.record_probe("researcher", "r-1", ok=False, output="refused")
    assert await probe_state() is Health.PASSING
    await backend.record_probe("researcher", "r-1", ok=False, output="refused")
    assert await probe_state() is Health.CRITICAL


async def test_lapsed_ttl_turns_critical(backend: RegistryBackend) -> None:
    await backend.register(
        "researcher", "r-1", agent(check=CheckSpec(ttl_seconds=0.2, interval_seconds=0)), owner=None
    )
    await backend.heartbeat("researcher", "r-1", owner=None)
    record = await eventually(
        lambda: backend.get("researcher", "r-1"), lambda r: r.health is Health.CRITICAL
    )
    assert record.checks[0].output == "TTL expired"


async def test_heartbeats_after_expiry_rearm_the_ttl(backend: RegistryBackend) -> None:
    check = CheckSpec(ttl_seconds=0.2, interval_seconds=0)
    await backend.register("researcher", "r-1", agent(check=check), owner=None)
    await eventually(
        lambda: backend.get("researcher", "r-1"), lambda r: r.health is Health.CRITICAL
    )
    assert (await backend.heartbeat("researcher", "r-1", owner=None)).health is Health.PASSING
    await eventually(
        lambda: backend.get("researcher", "r-1"), lambda r: r.health is Health.CRITICAL
    )


async def test_critical_instance_is_deregistered_after_the_limit(
    backend: RegistryBackend,
) -> None:
    check = CheckSpec(ttl_seconds=0.2, interval_seconds=0, deregister_critical_after_seconds=0.3)
    await backend.register("researcher", "r-1", agent(check=check), owner=None)
    await backend.register("researcher", "r-2", agent(port=9001), owner=None)
    await eventually(
        lambda: backend.instances("researcher"), lambda r: [i.id for i in r.value] == ["r-2"]
    )


async def test_another_owner_cannot_take_over_a_service(backend: RegistryBackend) -> None:
    await backend.register("researcher", "r-1", agent(), owner="key-a")
    with pytest.raises(Conflict):
        await backend.register("researcher", "r-2", agent(port=9001), owner="key-b")
    with pytest.raises(Conflict):
        await backend.register("researcher", "r-1", agent(), owner="key-b")
    with pytest.raises(Forbidden):
        await backend.deregister("researcher", "r-1", owner="key-b")
    with pytest.raises(Forbidden):
        await backend.heartbeat("researcher", "r-1", owner="key-b")
    await backend.register("researcher", "r-2", agent(port=9001), owner="key-a")
    await backend.deregister("researcher", "r-1", owner="key-a")
    await backend.deregister("researcher", "r-2", owner="key-a")
    # The name is free again once its owner has no instance left.
    _, created = await backend.register("researcher", "r-3", agent(), owner="key-b")
    assert created


async def test_services_count_instances_by_health(backend: RegistryBackend) -> None:
    await backend.register("researcher", "r-1", agent(), owner=None)
    await backend.register("researcher", "r-2", agent(port=9001), owner=None)
    await backend.register("calc", "c-1", tool_server(), owner=None)
    await backend.heartbeat("researcher", "r-1", owner=None)
    summaries = {s.name: s for s in (await backend.services()).value}
    assert summaries["researcher"].instances == 2
    assert (summaries["researcher"].passing, summaries["researcher"].critical) == (1, 1)
    assert summaries["calc"].kinds == [Kind.MCP_SERVER]


async def test_passing_filter_lists_only_passing_instances(backend: RegistryBackend) -> None:
    await backend.register("researcher", "r-1", agent(), owner=None)
    await backend.register("researcher", "r-2", agent(port=9001), owner=None)
    await backend.heartbeat("researcher", "r-2", owner=None)
    everyone = await backend.instances("researcher")
    passing = await backend.instances("researcher", passing_only=True)
    assert [i.id for i in everyone.value] == ["r-1", "r-2"]
    assert [i.id for i in passing.value] == ["r-2"]


async def test_agent_search_by_skill_tag_and_text(backend: RegistryBackend) -> None:
    await backend.register(
        "researcher",
        "r-1",
        agent(skills=[("search", ["docs", "python"])], description="Finds Python help topics"),
        owner=None,
    )
    await backend.register(
        "calculator",
        "c-1",
        agent(port=9001, skills=[("calculate", ["math"])], tags=["numbers"]),
        owner=None,
    )
    await backend.register("calc", "t-1", tool_server(), owner=None)
    await backend.heartbeat("calculator", "c-1", owner=None)

    async def ids(**query: Any) -> list[str]:
        return [i.id for i in (await backend.agents(AgentQuery(**query))).value]

    assert await ids() == ["c-1", "r-1"]  # tool servers are not agents
    assert await ids(skill="SEARCH") == ["r-1"]
    assert await ids(tag="math") == ["c-1"]
    assert await ids(tag="numbers") == ["c-1"]
    assert await ids(text="python help") == ["r-1"]
    assert await ids(text="python nothing") == []
    assert await ids(passing_only=True) == ["c-1"]
    assert await ids(skill="search", tag="python") == ["r-1"]
    assert await ids(skill="calculate", tag="docs") == []
    assert await ids(skill="search", text="nothing") == []


async def test_every_change_moves_the_index_and_idle_heartbeats_do_not(
    backend: RegistryBackend,
) -> None:
    start = backend.index(Scope.everything())
    await backend.register("researcher", "r-1", agent(), owner=None)
    registered = backend.index(Scope.everything())
    assert registered > start
    await backend.heartbeat("researcher", "r-1", owner=None)
    beat = backend.index(Scope.everything())
    assert beat > registered
    await backend.heartbeat("researcher", "r-1", owner=None)
    assert backend.index(Scope.everything()) == beat
    assert (await backend.instances("researcher")).index == beat


async def test_wait_returns_at_once_for_zero_or_stale_index(backend: RegistryBackend) -> None:
    await backend.register("researcher", "r-1", agent(), owner=None)
    current = backend.index(Scope.everything())
    with anyio.fail_after(1):
        assert await backend.wait(Scope.everything(), 0, 30) == current
        assert await backend.wait(Scope.everything(), current - 1, 30) == current
        # An index from the future means the store went back: answer at once.
        assert await backend.wait(Scope.everything(), current + 100, 30) == current


async def test_wait_wakes_on_change_and_holds_otherwise(backend: RegistryBackend) -> None:
    index = backend.index(Scope("researcher"))
    started = time.monotonic()
    assert await backend.wait(Scope("researcher"), index, 0.2) == index
    assert time.monotonic() - started >= 0.19  # held (timers may fire ~1 ms early)

    woke: list[int] = []

    async def watch() -> None:
        woke.append(await backend.wait(Scope("researcher"), index, 10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await anyio.wait_all_tasks_blocked()
        await backend.register("calc", "t-1", tool_server(), owner=None)  # another scope
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        changed_at = time.monotonic()
        await backend.register("researcher", "r-1", agent(), owner=None)
    assert time.monotonic() - changed_at < 0.1
    assert woke == [backend.index(Scope("researcher"))]
    assert woke[0] > index


async def test_records_render_as_json(backend: RegistryBackend) -> None:
    record, _ = await backend.register("researcher", "r-1", agent(), owner=None)
    assert Instance.model_validate_json(record.json_bytes) == record


async def test_agent_scope_moves_only_for_agents(backend: RegistryBackend) -> None:
    agents = Scope.of_kind(Kind.A2A_AGENT)
    await backend.register("researcher", "r-1", agent(), owner=None)
    before = backend.index(agents)
    assert (await backend.agents(AgentQuery())).index == before
    await backend.register("calc", "t-1", tool_server(), owner=None)
    await backend.heartbeat("calc", "t-1", owner=None)
    assert backend.index(agents) == before
    await backend.heartbeat("researcher", "r-1", owner=None)
    assert backend.index(agents) > before
