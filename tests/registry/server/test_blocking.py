"""Blocking queries over HTTP, with Consul's contract."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from registry.backends import MemoryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.registry.server.test_api import PATH, agent_body
from tests.support.live import serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

LIST = "/v1/services/researcher/instances"


async def current_index(registry: httpx.AsyncClient, path: str = LIST) -> int:
    return int((await registry.get(path)).headers["x-meshgate-index"])


async def test_blocking_list_returns_within_100ms_of_a_change(registry: httpx.AsyncClient) -> None:
    await registry.put(PATH, json=agent_body())
    index = await current_index(registry)
    answered: list[tuple[float, httpx.Response]] = []

    async def watch() -> None:
        response = await registry.get(LIST, params={"index": index, "wait": "30s"})
        answered.append((time.monotonic(), response))

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await anyio.wait_all_tasks_blocked()
        assert answered == []
        changed_at = time.monotonic()
        await registry.put(PATH + "/heartbeat")
    woke_at, response = answered[0]
    assert woke_at - changed_at < 0.1
    assert int(response.headers["x-meshgate-index"]) > index
    assert response.json()[0]["health"] == "passing"


async def test_blocking_list_holds_for_the_full_wait_without_change(
    registry: httpx.AsyncClient,
) -> None:
    await registry.put(PATH, json=agent_body())
    index = await current_index(registry)
    started = time.monotonic()
    response = await registry.get(LIST, params={"index": index, "wait": "300ms"})
    held = time.monotonic() - started
    # Consul adds up to wait/16 of jitter.
    # Timers may fire a millisecond early; the point is that it held, not that it returned.
    assert 0.29 <= held < 0.3 * 17 / 16 + 0.2
    assert int(response.headers["x-meshgate-index"]) == index


async def test_changes_elsewhere_do_not_wake_a_service_watch(registry: httpx.AsyncClient) -> None:
    await registry.put(PATH, json=agent_body())
    index = await current_index(registry)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await registry.get(LIST, params={"index": index, "wait": "300ms"})

        tg.start_soon(watch)
        await anyio.wait_all_tasks_blocked()
        await registry.put(
            "/v1/services/calc/instances/c-1",
            json={"kind": "mcp-server", "url": "http://127.0.0.1:9100/mcp"},
        )
    assert time.monotonic() - started >= 0.29  # held the wait (timers may fire ~1 ms early)


@pytest.mark.parametrize("path", [LIST, "/v1/services", "/v1/agents"])
async def test_zero_stale_or_future_index_answers_at_once(
    registry: httpx.AsyncClient, path: str
) -> None:
    await registry.put(PATH, json=agent_body())
    index = await current_index(registry, path)
    with anyio.fail_after(1):
        for asked in (0, index - 1, index + 1000):
            response = await registry.get(path, params={"index": asked, "wait": "30s"})
            assert int(response.headers["x-meshgate-index"]) == index


async def test_every_list_wakes_on_registration(registry: httpx.AsyncClient) -> None:
    seen: list[int] = []

    async def watch(path: str, index: int) -> None:
        response = await registry.get(path, params={"index": index, "wait": "30s"})
        seen.append(int(response.headers["x-meshgate-index"]))

    for path in ("/v1/services", "/v1/agents"):
        index = await current_index(registry, path)
        seen.clear()
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, path, index)
            await anyio.wait_all_tasks_blocked()
            await registry.put(
                f"/v1/services/researcher/instances/r-{index}", json=agent_body(9000 + index)
            )
        assert seen[0] > index


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"index": "-1"}, "index"),
        ({"index": "abc"}, "index"),
        ({"index": "1" * 30}, "index"),
        ({"index": "1", "wait": "soon"}, "wait"),
        ({"index": "1", "wait": "10x"}, "wait"),
        ({"index": "1", "wait": "-5s"}, "wait"),
        ({"index": "1", "wait": "nan"}, "wait"),
        ({"passing": "maybe"}, "passing"),
    ],
)
async def test_bad_query_parameters_are_named(
    registry: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await registry.get(LIST, params=params)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_wait_is_capped(registry_factory: object) -> None:
    from starlette.datastructures import QueryParams

    from registry.server.query import parse_blocking

    blocking = parse_blocking(QueryParams({"index": "5", "wait": "1h"}))
    assert blocking is not None
    assert blocking.wait == 300
    combined = parse_blocking(QueryParams({"index": "5", "wait": "1m30s"}))
    assert combined is not None
    assert combined.wait == 90
    default = parse_blocking(QueryParams({"index": "5"}))
    assert default is not None
    assert default.wait == 300


async def test_tool_server_changes_do_not_wake_an_agents_watch(
    registry: httpx.AsyncClient,
) -> None:
    await registry.put(PATH, json=agent_body())
    index = await current_index(registry, "/v1/agents")
    started = time.monotonic()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await registry.get("/v1/agents", params={"index": index, "wait": "300ms"})

        tg.start_soon(watch)
        await anyio.wait_all_tasks_blocked()
        await registry.put(
            "/v1/services/calc/instances/c-1",
            json={"kind": "mcp-server", "url": "http://127.0.0.1:9100/mcp"},
        )
    assert time.monotonic() - started >= 0.29  # held the wait (timers may fire ~1 ms early)


async def test_a_blocking_query_ends_when_its_client_goes_away() -> None:
    """A held watch of a client that hung up must not hold the server (its shutdown) for 60 s."""
    app = create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback()))
    started: list[str] = []
    finished: list[str] = []

    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            started.append(scope["path"])
        await app(scope, receive, send)
        if scope["type"] == "http":
            finished.append(scope["path"])

    async def calls() -> tuple[int, int]:
        return len(started), len(finished)

    async with serve(observed) as url, httpx.AsyncClient(base_url=url) as http:
        index = await current_index(http)
        port = int(url.rsplit(":", 1)[1])
        stream = await anyio.connect_tcp("127.0.0.1", port)
        request = f"GET {LIST}?index={index}&wait=60s HTTP/1.1\r\nHost: registry\r\n\r\n"
        await stream.send(request.encode())
        await eventually(calls, (2, 1).__eq__, within=2)  # the watch is held...
        await stream.aclose()
        await eventually(calls, (2, 2).__eq__, within=2)  # ...until the client hangs up
