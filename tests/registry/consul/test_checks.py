"""Consul runs the protocol probe as an HTTP check; the registry reads its outcome.

The instance here is a real Starlette app on a loopback port whose answers
the test switches; the double runs the check against it like a Consul agent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from registry.backends.consul import ConsulBackend, ConsulSettings
from registry.models import CheckSpec, Health, Instance, Kind, Registration
from tests.registry.backends.test_contract import card
from tests.support.consul_double import running
from tests.support.live import serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


@dataclass
class Upstream:
    """What the instance answers, and what it was asked."""

    status: int = 200
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def answer(request: Request) -> Response:
            body = await request.body()
            self.seen.append((request.method, request.url.path, dict(request.headers), body))
            return JSONResponse({"name": "agent"}, status_code=self.status)

        paths = ["/.well-known/agent-card.json", "/mcp"]
        return Starlette(routes=[Route(p, answer, methods=["GET", "POST"]) for p in paths])


@pytest.fixture
async def setup() -> AsyncIterator[tuple[ConsulBackend, Upstream, str]]:
    upstream = Upstream()
    async with running() as (_, consul_url), serve(upstream.app()) as url:
        store = ConsulBackend(ConsulSettings(addr=consul_url))
        await store.start()
        try:
            yield store, upstream, url
        finally:
            await store.close()


CHECK = CheckSpec(
    ttl_seconds=30, interval_seconds=0.05, successes_before_passing=2, failures_before_critical=2
)


def probe_of(instance: Instance) -> Health:
    return next(c.status for c in instance.checks if c.name == "probe")


async def test_the_agent_is_the_worst_of_heartbeat_and_probe_with_thresholds(
    setup: tuple[ConsulBackend, Upstream, str],
) -> None:
    store, upstream, url = setup
    registration = Registration(
        kind=Kind.A2A_AGENT, url=f"{url}/", card=card("agent", [("search", [])]), check=CHECK
    )
    await store.register("researcher", "r-1", registration, owner=None)
    beat = await store.heartbeat("researcher", "r-1", owner=None)
    assert beat.health is Health.CRITICAL  # registered, not yet reachable

    async def record() -> Instance:
        return await store.get("researcher", "r-1")

    passing = await eventually(record, lambda r: r.health is Health.PASSING)
    assert "200" in next(c.output for c in passing.checks if c.name == "probe")
    method, path, headers, _ = upstream.seen[0]
    assert (method, path, headers["accept"]) == (
        "GET",
        "/.well-known/agent-card.json",
        "application/json",
    )
    assert len(upstream.seen) >= 2  # SuccessBeforePassing=2

    upstream.status = 503
    failing = await eventually(record, lambda r: probe_of(r) is Health.CRITICAL)
    assert failing.health is Health.CRITICAL
    upstream.status = 429  # Consul's HTTP check: 429 is a warning
    await eventually(record, lambda r: probe_of(r) is Health.WARNING)


async def test_a_tool_server_is_probed_with_a_stateless_tools_list(
    setup: tuple[ConsulBackend, Upstream, str],
) -> None:
    store, upstream, url = setup
    tools: list[dict[str, Any]] = [{"name": "add", "inputSchema": {"type": "object"}}]
    registration = Registration(kind=Kind.MCP_SERVER, url=f"{url}/mcp", tools=tools, check=CHECK)
    await store.register("calc", "c-1", registration, owner=None)
    await eventually(lambda: _count(upstream), lambda n: n >= 1)
    method, path, headers, body = upstream.seen[0]
    assert (method, path) == ("POST", "/mcp")
    assert headers["mcp-protocol-version"] == "2026-07-28"
    assert "text/event-stream" in headers["accept"]
    assert json.loads(body)["method"] == "tools/list"


async def _count(upstream: Upstream) -> int:
    return len(upstream.seen)


async def test_turning_the_probe_off_removes_its_check(
    setup: tuple[ConsulBackend, Upstream, str],
) -> None:
    store, _, url = setup
    with_probe = Registration(kind=Kind.MCP_SERVER, url=f"{url}/mcp", tools=[], check=CHECK)
    first, _ = await store.register("calc", "c-1", with_probe, owner=None)
    assert [c.name for c in first.checks] == ["ttl", "probe"]
    without = with_probe.model_copy(update={"check": CheckSpec(interval_seconds=0)})
    second, _ = await store.register("calc", "c-1", without, owner=None)
    assert [c.name for c in second.checks] == ["ttl"]
