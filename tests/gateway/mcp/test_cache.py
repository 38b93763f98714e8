"""The result cache of ``/mcp`` in memory: what is cached, for how long, and ``--no-cache``;
an unreachable Redis leaves calls working. Both paths (the raw fast path and the SDK
server) share it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from mcp import Client

from gateway.mcp import McpSettings
from gateway.mcp.cache import CacheSettings, MemoryStore, cache_key
from gateway.mcp.policy import parse_tool_policy
from gateway.security import AuthSettings
from meshgate.cli import main
from tests.gateway.mcp.counting import CountingMesh, counting_mesh, metric, rpc
from tests.support.live import free_port
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

CACHED, SHORT, OFF, NO_REDIS = range(4)
HITS, MISSES = "meshgate_mcp_cache_hits_total", "meshgate_mcp_cache_misses_total"
OPS, GUEST = "ops-key-for-the-cache-tests", "guest-key-for-the-cache-tests"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[CountingMesh]:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with counting_mesh(
        McpSettings(cache=CacheSettings(enabled=True)),
        McpSettings(cache=CacheSettings(enabled=True, ttl=0.3)),
        McpSettings(cache=CacheSettings(enabled=False)),
        McpSettings(cache=CacheSettings(enabled=True, url=nowhere)),
    ) as mesh:
        yield mesh


async def call(mesh: CountingMesh, gateway: int, tool: str, arguments: dict[str, Any]) -> Any:
    """One stateless call (the fast path); the structured result, checked to be no error."""
    url = mesh.gateways[gateway] + "/mcp"
    answer = await rpc(mesh.http, url, "tools/call", {"name": tool, "arguments": arguments})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


async def counts(http: httpx.AsyncClient, gateway: str, tool: str) -> tuple[float, float]:
    return await metric(http, gateway, HITS, tool), await metric(http, gateway, MISSES, tool)


async def test_two_identical_calls_of_a_read_only_idempotent_tool_go_upstream_once(
    mesh: CountingMesh,
) -> None:
    gateway = mesh.gateways[CACHED]
    hits, misses = await counts(mesh.http, gateway, "counter__lookup")
    first = await call(mesh, CACHED, "counter__lookup", {"key": "same"})
    # The second through the SDK server (a session client): the same cache answers.
    async with Client(gateway + "/mcp", mode="legacy", cache=None) as client:
        second = await client.call_tool("counter__lookup", {"key": "same"})
    assert mesh.calls["lookup:same"] == 1
    assert first["structuredContent"] == second.structured_content == {"key": "same", "calls": 1}
    assert await counts(mesh.http, gateway, "counter__lookup") == (hits + 1, misses + 1)


async def test_a_tool_without_both_hints_goes_upstream_every_time(mesh: CountingMesh) -> None:
    for _ in range(2):
        await call(mesh, CACHED, "counter__bump", {"key": "plain"})
    assert mesh.calls["bump:plain"] == 2
    assert await counts(mesh.http, mesh.gateways[CACHED], "counter__bump") == (0, 0)


async def test_different_arguments_are_different_results(mesh: CountingMesh) -> None:
    a = await call(mesh, CACHED, "counter__lookup", {"key": "a"})
    b = await call(mesh, CACHED, "counter__lookup", {"key": "b"})
    assert (a["structuredContent"]["key"], b["structuredContent"]["key"]) == ("a", "b")
    assert mesh.calls["lookup:a"] == mesh.calls["lookup:b"] == 1


async def test_error_results_are_never_cached(mesh: CountingMesh) -> None:
    for _ in range(2):
        result = await call(mesh, CACHED, "counter__fails", {"key": "x"})
        assert result["isError"] is True
    assert mesh.calls["fails:x"] == 2


async def test_a_result_expires_after_its_ttl(mesh: CountingMesh) -> None:
    first = await call(mesh, SHORT, "counter__lookup", {"key": "brief"})
    assert first["structuredContent"]["calls"] == 1

    async def again() -> int:
        result = await call(mesh, SHORT, "counter__lookup", {"key": "brief"})
        return int(result["structuredContent"]["calls"])

    # Answered from the cache (calls stays 1) until the 0.3 s TTL runs out.
    assert await eventually(again, lambda calls: calls == 2, within=5) == 2


async def test_no_cache_calls_upstream_every_time(mesh: CountingMesh) -> None:
    for _ in range(2):
        await call(mesh, OFF, "counter__lookup", {"key": "uncached"})
    assert mesh.calls["lookup:uncached"] == 2
    assert await counts(mesh.http, mesh.gateways[OFF], "counter__lookup") == (0, 0)


async def test_an_unreachable_redis_leaves_calls_working_uncached(mesh: CountingMesh) -> None:
    for _ in range(2):
        result = await call(mesh, NO_REDIS, "counter__lookup", {"key": "no-redis"})
        assert result["structuredContent"]["key"] == "no-redis"
    assert mesh.calls["lookup:no-redis"] == 2
    text = (await mesh.http.get(mesh.gateways[NO_REDIS] + "/metrics")).text
    errors = [
        line for line in text.splitlines() if line.startswith("meshgate_mcp_cache_errors_total")
    ]
    assert errors
    assert float(errors[0].split()[-1]) >= 1


def test_the_key_is_canonical_in_the_arguments_and_names_service_and_tool() -> None:
    key = cache_key("calc", "evaluate", {"a": 1, "b": [1, 2]})
    assert key == cache_key("calc", "evaluate", {"b": [1, 2], "a": 1})
    assert key != cache_key("calc", "evaluate", {"a": 1, "b": [2, 1]})
    assert key != cache_key("other", "evaluate", {"a": 1, "b": [1, 2]})
    assert key != cache_key("calc", "statistics", {"a": 1, "b": [1, 2]})


async def test_the_memory_store_is_a_bounded_lru_with_expiry() -> None:
    now = [0.0]
    store = MemoryStore(2, clock=lambda: now[0])
    await store.set("a", b"1", 10)
    await store.set("b", b"2", 10)
    assert await store.get("a") == b"1"  # a is now the most recently used
    await store.set("c", b"3", 10)
    assert (await store.get("b"), await store.get("a"), await store.get("c")) == (None, b"1", b"3")
    now[0] = 10.0
    assert await store.get("a") is None
    assert len(store) == 1


def test_bad_cache_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="redis://"):
        CacheSettings(url="http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="positive"):
        CacheSettings(ttl=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache-url", "http://127.0.0.1:6379"], "redis://"),
        (["--cache-ttl", "0"], "--cache-ttl"),
    ],
)
def test_bad_cache_flags_are_refused_by_meshgate_gateway(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["gateway", "--registry", "http://127.0.0.1:1", *args])
    assert result.exit_code == 2
    assert message in result.output


async def test_a_caller_the_policy_refuses_never_gets_a_cached_result() -> None:
    policy = parse_tool_policy({"principals": {"key:guest": {"deny": ["counter__lookup"]}}})
    auth = AuthSettings(named_api_keys=(("ops", OPS), ("guest", GUEST)))
    cached = McpSettings(cache=CacheSettings(enabled=True), tool_policy=policy)
    async with counting_mesh(cached, auth=auth, key=OPS) as mesh:
        first = await call(mesh, 0, "counter__lookup", {"key": "secret"})
        assert first["structuredContent"]["calls"] == 1
        hits = await metric(mesh.http, mesh.gateways[0], HITS, "counter__lookup")
        guest = {"authorization": f"Bearer {GUEST}"}
        params = {"name": "counter__lookup", "arguments": {"key": "secret"}}
        refused = await rpc(mesh.http, mesh.mcp, "tools/call", params, headers=guest)
        assert refused.status_code == 400
        assert refused.json()["error"]["message"] == "Unknown tool: counter__lookup"
        assert await metric(mesh.http, mesh.gateways[0], HITS, "counter__lookup") == hits
        assert mesh.calls["lookup:secret"] == 1
