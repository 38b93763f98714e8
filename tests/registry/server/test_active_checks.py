"""The registry probes real agents and tool servers with their own protocol."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.registry.server.conftest import AppFactory
from tests.support.live import free_port, serve
from tests.support.peers import a2a_agent_app, agent_card, running_a2a_agent, running_mcp_server
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

FAST = {"ttl_seconds": 30, "interval_seconds": 0.1, "timeout_seconds": 2}


def checks(record: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in record["checks"]}


async def test_live_agent_becomes_passing_only_when_registered_and_reachable(
    registry: httpx.AsyncClient,
) -> None:
    async with running_a2a_agent("researcher") as url:
        path = "/v1/services/researcher/instances/r-1"
        body = {"kind": "a2a-agent", "url": url + "/", "card": agent_card("researcher", url + "/")}
        body["check"] = FAST
        await registry.put(path, json=body)
        reachable = await eventually(
            lambda: registry.get(path), lambda r: checks(r.json())["probe"] == "passing"
        )
        assert reachable.json()["health"] == "critical"  # reachable, not yet heartbeating
        assert (await registry.put(path + "/heartbeat")).json()["health"] == "passing"


async def test_live_tool_server_passes_its_probe(registry: httpx.AsyncClient) -> None:
    async with running_mcp_server("calc") as url:
        path = "/v1/services/calc/instances/c-1"
        await registry.put(path, json={"kind": "mcp-server", "url": url, "check": FAST})
        await registry.put(path + "/heartbeat")
        await eventually(lambda: registry.get(path), lambda r: r.json()["health"] == "passing")


async def test_dead_instance_turns_critical_after_failure_threshold(
    registry: httpx.AsyncClient,
) -> None:
    path = "/v1/services/researcher/instances/r-1"
    async with running_a2a_agent("researcher") as url:
        body = {"kind": "a2a-agent", "url": url + "/", "card": agent_card("researcher", url + "/")}
        body["check"] = {**FAST, "failures_before_critical": 2}
        await registry.put(path, json=body)
        await registry.put(path + "/heartbeat")
        await eventually(lambda: registry.get(path), lambda r: r.json()["health"] == "passing")
    # The agent is gone; its heartbeats alone do not keep it routable.
    await registry.put(path + "/heartbeat")
    dead = await eventually(lambda: registry.get(path), lambda r: r.json()["health"] == "critical")
    probe = next(c for c in dead.json()["checks"] if c["name"] == "probe")
    assert probe["output"]


async def test_probe_rechecks_the_url_policy(registry_factory: AppFactory) -> None:
    # The name resolved to loopback at registration and to a private range later:
    # the probe refuses to connect rather than follow the new answer.
    answers = {"agent.test": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    async with registry_factory(resolver=resolver) as registry:
        port = free_port()
        url = f"http://agent.test:{port}/"
        path = "/v1/services/researcher/instances/r-1"
        body = {"kind": "a2a-agent", "url": url, "card": agent_card("researcher", url)}
        answers["agent.test"] = ["127.0.0.1"]
        body["check"] = FAST
        assert (await registry.put(path, json=body)).status_code == 201
        answers["agent.test"] = ["10.1.2.3"]
        refused = await eventually(
            lambda: registry.get(path),
            lambda r: (
                "URL policy"
                in next(c["output"] for c in r.json()["checks"] if c["name"] == "probe")
            ),
        )
        assert checks(refused.json())["probe"] == "critical"


async def test_an_instance_registered_before_it_listens_passes_soon_after(
    registry: httpx.AsyncClient,
) -> None:
    # Processes register during startup, before their listener accepts: the
    # first probe fails, and the next comes well before a whole interval.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = "/v1/services/researcher/instances/r-1"
    body = {"kind": "a2a-agent", "url": url + "/", "card": agent_card("researcher", url + "/")}
    body["check"] = {"ttl_seconds": 30, "interval_seconds": 60, "timeout_seconds": 2}
    await registry.put(path, json=body)
    await eventually(
        lambda: registry.get(path),
        lambda r: (
            next(c for c in r.json()["checks"] if c["name"] == "probe")["output"]
            != "awaiting first probe"
        ),
    )
    async with serve(a2a_agent_app("researcher", base_url=url), port=port):
        await eventually(
            lambda: registry.get(path),
            lambda r: checks(r.json())["probe"] == "passing",
            within=5,
        )


async def test_a_passing_instance_that_dies_turns_critical_well_before_an_interval(
    registry: httpx.AsyncClient,
) -> None:
    # Once a passing instance fails a probe, the failures that confirm it is
    # down come soon after (0.1 s doubling), not an interval apart each.
    path = "/v1/services/calc/instances/c-1"
    check = {"ttl_seconds": 300, "interval_seconds": 2, "timeout_seconds": 2}
    async with running_mcp_server("calc") as url:
        body = {"kind": "mcp-server", "url": url, "check": {**check, "failures_before_critical": 3}}
        await registry.put(path, json=body)
        await registry.put(path + "/heartbeat")
        await eventually(lambda: registry.get(path), lambda r: r.json()["health"] == "passing")
    # Three failures an interval apart would take 4 s after the first; the edge takes < 1 s.
    await eventually(
        lambda: registry.get(path), lambda r: r.json()["health"] == "critical", within=3.5
    )
