"""RegistryClient against real registry apps: in-process, and on real sockets."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from registry.backends import Indexed, MemoryBackend
from registry.client import RegistryClient
from registry.errors import (
    BackendUnavailable,
    InvalidRequest,
    NotFound,
    RegistryError,
    Unauthorized,
)
from registry.models import AgentQuery, Health, Instance, Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.registry.server.conftest import running_registry
from tests.support.live import free_port, serve
from tests.support.peers import agent_card
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def agent(port: int = 9001, skills: tuple[str, ...] = ("search",), **extra: Any) -> Registration:
    url = f"http://127.0.0.1:{port}/"
    return Registration(
        kind=Kind.A2A_AGENT,
        url=url,
        card=agent_card("researcher", url, skills=skills),
        check={"interval_seconds": 0, "ttl_seconds": 30},
        **extra,
    )


def tool_server(port: int = 9100) -> Registration:
    return Registration(
        kind=Kind.MCP_SERVER,
        url=f"http://127.0.0.1:{port}/mcp",
        tools=[{"name": "add", "inputSchema": {"type": "object"}}],
        check={"interval_seconds": 0, "ttl_seconds": 30},
    )


@contextlib.asynccontextmanager
async def in_process(**settings: Any) -> AsyncIterator[tuple[RegistryClient, httpx.AsyncClient]]:
    async with running_registry(**settings) as http:
        yield RegistryClient("http://registry", http=http), http


def registry_app(backend: MemoryBackend | None = None) -> Starlette:
    settings = RegistrySettings(url_policy=UrlPolicy.loopback())
    return create_app(backend or MemoryBackend(), settings)


def current(get: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """A probe for ``eventually`` that reads a value the test can see."""

    async def probe() -> T:
        return get()

    return probe


def ids(snapshot: Indexed[list[Instance]]) -> list[str]:
    return [i.id for i in snapshot.value]


# -- methods -----------------------------------------------------------------


async def test_register_get_heartbeat_deregister() -> None:
    async with in_process() as (client, _):
        record, created = await client.register("researcher", "r-1", agent())
        assert created
        assert (record.service, record.id, record.health) == ("researcher", "r-1", Health.CRITICAL)
        again, created = await client.register("researcher", "r-1", agent(tags=["v2"]))
        assert not created
        assert again.tags == ["v2"]
        assert (await client.get("researcher", "r-1")).tags == ["v2"]
        assert (await client.heartbeat("researcher", "r-1")).health is Health.PASSING
        warned = await client.heartbeat("researcher", "r-1", Health.WARNING, "busy")
        assert warned.health is Health.WARNING
        assert [(c.name, c.output) for c in warned.checks] == [("ttl", "busy")]
        await client.deregister("researcher", "r-1")
        with pytest.raises(NotFound):
            await client.get("researcher", "r-1")
        with pytest.raises(NotFound):
            await client.heartbeat("researcher", "r-1")
        with pytest.raises(NotFound):
            await client.deregister("researcher", "r-1")


async def test_lists_services_instances_and_agents() -> None:
    async with in_process() as (client, _):
        await client.register("researcher", "r-1", agent(9001, ("search",), tags=["blue"]))
        await client.register("researcher", "r-2", agent(9002, ("summarize",)))
        await client.heartbeat("researcher", "r-2")
        await client.register("calc", "c-1", tool_server())

        services = await client.services()
        assert services.index >= 1
        assert [(s.name, s.instances, s.passing) for s in services.value] == [
            ("calc", 1, 0),
            ("researcher", 2, 1),
        ]
        listed = await client.instances("researcher")
        assert ids(listed) == ["r-1", "r-2"]
        assert listed.index >= 1
        assert ids(await client.instances("researcher", passing_only=True)) == ["r-2"]
        assert ids(await client.instances("nobody")) == []

        assert ids(await client.agents(AgentQuery())) == ["r-1", "r-2"]
        assert ids(await client.agents(AgentQuery(skill="search"))) == ["r-1"]
        assert ids(await client.agents(AgentQuery(tag="blue"))) == ["r-1"]
        assert ids(await client.agents(AgentQuery(text="summarize"))) == ["r-2"]
        assert ids(await client.agents(AgentQuery(passing_only=True))) == ["r-2"]

        everything = await client.all_instances()
        assert [i.key for i in everything.value] == [
            ("calc", "c-1"),
            ("researcher", "r-1"),
            ("researcher", "r-2"),
        ]
        assert ids(await client.all_instances(passing_only=True)) == ["r-2"]


async def test_blocking_list_returns_when_the_index_moves() -> None:
    async with in_process() as (client, _):
        first = await client.instances("researcher")
        async with anyio.create_task_group() as tg:
            answers: list[Indexed[list[Instance]]] = []

            async def block() -> None:
                answers.append(await client.instances("researcher", index=first.index, wait=5))

            tg.start_soon(block)
            await client.register("researcher", "r-1", agent())
        assert answers[0].index > first.index
        assert ids(answers[0]) == ["r-1"]


# -- errors ------------------------------------------------------------------


async def test_refusals_become_the_matching_error() -> None:
    async with in_process() as (client, _):
        with pytest.raises(InvalidRequest) as bad_name:
            await client.get("Bad_Name", "r-1")
        assert [e.field for e in bad_name.value.errors] == ["service"]
        no_card = Registration(kind=Kind.A2A_AGENT, url="http://127.0.0.1:9001/")
        with pytest.raises(InvalidRequest) as invalid:
            await client.register("researcher", "r-1", no_card)
        assert [e.field for e in invalid.value.errors] == ["card"]
        assert invalid.value.status == 422
        with pytest.raises(InvalidRequest):
            await client.instances("Not Valid")


async def test_api_keys_guard_writes_and_never_leak() -> None:
    async with in_process(api_keys=("right-key",)) as (anonymous, http):
        with pytest.raises(Unauthorized):
            await anonymous.register("researcher", "r-1", agent())
        wrong = RegistryClient("http://registry", http=http, api_key="wrong-key")
        with pytest.raises(Unauthorized) as refused:
            await wrong.register("researcher", "r-1", agent())
        assert "wrong-key" not in str(refused.value)
        keyed = RegistryClient("http://registry", http=http, api_key="right-key")
        assert "right-key" not in repr(keyed)
        _, created = await keyed.register("researcher", "r-1", agent())
        assert created
        assert ids(await anonymous.instances("researcher")) == ["r-1"]  # reads stay open
        await keyed.deregister("researcher", "r-1")


async def test_unreachable_registry_is_backend_unavailable() -> None:
    port = free_port()
    async with httpx.AsyncClient() as http:
        client = RegistryClient(f"http://127.0.0.1:{port}", http=http, api_key="sekrit")
        with pytest.raises(BackendUnavailable) as down:
            await client.get("researcher", "r-1")
    assert f"127.0.0.1:{port}" in down.value.detail
    assert "sekrit" not in str(down.value)
    assert down.value.__cause__ is None  # the cause's request holds the bearer header


async def test_a_registry_that_never_answers_times_out_as_unavailable() -> None:
    # A listening socket that never accepts: connect succeeds, no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        async with httpx.AsyncClient(timeout=0.1) as http:
            client = RegistryClient(f"http://127.0.0.1:{port}", http=http)
            with pytest.raises(BackendUnavailable, match="did not answer in time"):
                await client.services()


async def test_answers_that_are_not_problem_details() -> None:
    async def bad_gateway(request: Request) -> Response:
        return PlainTextResponse("upstream down", status_code=502)

    async def crashed(request: Request) -> Response:
        body = {
            "type": "urn:meshgate:error:internal",
            "title": "x",
            "status": 500,
            "detail": "boom",
        }
        return JSONResponse(body, status_code=500, media_type="application/problem+json")

    app = Starlette(routes=[Route("/v1/services", bad_gateway), Route("/v1/agents", crashed)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = RegistryClient("http://registry/", http=http)
        with pytest.raises(BackendUnavailable, match="HTTP 502"):
            await client.services()
        with pytest.raises(RegistryError, match="boom") as internal:
            await client.agents(AgentQuery())
        assert type(internal.value) is RegistryError


# -- watches -----------------------------------------------------------------


async def test_watch_yields_at_once_then_on_change_but_not_on_timeouts() -> None:
    async with in_process() as (client, http):
        answered = 0

        async def count(response: httpx.Response) -> None:
            nonlocal answered
            answered += 1

        http.event_hooks["response"].append(count)
        seen: list[tuple[float, Indexed[list[Instance]]]] = []

        async def follow() -> None:
            async for snapshot in client.watch_instances("researcher", wait=0.2):
                seen.append((time.monotonic(), snapshot))

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await eventually(current(lambda: len(seen)), lambda n: n == 1)
            assert ids(seen[0][1]) == []

            changed = time.monotonic()
            await client.register("researcher", "r-1", agent())
            await eventually(current(lambda: len(seen)), lambda n: n == 2)
            assert seen[1][0] - changed < 0.1
            assert ids(seen[1][1]) == ["r-1"]
            assert seen[1][1].index > seen[0][1].index

            # Let several waits run out; none of them may yield.
            before = answered
            await eventually(current(lambda: answered), lambda n: n >= before + 3)
            assert len(seen) == 2
            tg.cancel_scope.cancel()


async def test_watch_agents_follows_the_query() -> None:
    async with in_process() as (client, _):
        watch = client.watch_agents(AgentQuery(skill="search"), wait=1.0)
        first = await anext(watch)
        assert ids(first) == []
        await client.register("calc", "c-1", tool_server())  # moves the index, matches nothing
        await client.register("researcher", "r-1", agent())
        latest = await eventually(lambda: anext(watch), lambda s: ids(s) == ["r-1"])
        assert latest.index > first.index
        await watch.aclose()


async def test_watch_ends_on_a_refusal() -> None:
    async with in_process() as (client, _):
        with pytest.raises(InvalidRequest):
            await anext(client.watch_instances("Not_A_Label", wait=0.2))


async def test_watch_follows_consul_index_rules() -> None:
    # A scripted registry: indexes that repeat, go back, and read 0.
    script = [5, 5, 7, 3, 0]
    asked: list[str] = []

    async def answer(request: Request) -> Response:
        asked.append(request.query_params["index"])
        index = script.pop(0)
        return JSONResponse([], headers={"X-Meshgate-Index": str(index)})

    app = Starlette(routes=[Route("/v1/services/{service}/instances", answer)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = RegistryClient("http://registry", http=http)
        watch = client.watch_instances("researcher", wait=0.2)
        indexes = [(await anext(watch)).index for _ in range(4)]
        await watch.aclose()
    # 5 repeated is a timed-out wait (no yield); 3 and 0 (read as 1) go back,
    # restart the loop and are its first snapshots; 0 is never sent back.
    assert indexes == [5, 7, 3, 1]
    assert asked == ["0", "5", "5", "7", "3"]


async def test_watch_survives_a_registry_restart_on_the_same_port() -> None:
    port = free_port()
    seen: list[Indexed[list[Instance]]] = []
    async with httpx.AsyncClient() as http, anyio.create_task_group() as tg:
        client = RegistryClient(f"http://127.0.0.1:{port}", http=http)

        async def follow() -> None:
            async for snapshot in client.watch_instances("researcher", wait=0.2):
                seen.append(snapshot)

        async with serve(registry_app(), port=port):
            for n in range(1, 5):
                await client.register("researcher", f"r-{n}", agent(9000 + n))
            tg.start_soon(follow)
            await eventually(current(lambda: seen), lambda s: len(s) == 1)
            old = seen[-1]
            assert len(old.value) == 4

        # A new registry with an empty store: its index starts over, below ours.
        async with serve(registry_app(MemoryBackend()), port=port):
            await client.register("researcher", "r-new", agent(9100))
            await eventually(current(lambda: seen), lambda s: ids(s[-1]) == ["r-new"])
            assert seen[-1].index < old.index
            tg.cancel_scope.cancel()


async def test_watch_backs_off_while_the_registry_is_down() -> None:
    sent = 0

    async def count(request: httpx.Request) -> None:
        nonlocal sent
        sent += 1

    port = free_port()
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        client = RegistryClient(f"http://127.0.0.1:{port}", http=http)
        with anyio.move_on_after(1.0):
            async for _ in client.watch_instances("researcher", wait=0.2):
                pytest.fail("nothing listens, so nothing can be yielded")
    assert 2 <= sent < 20


async def test_watch_all_follows_every_service() -> None:
    async with in_process() as (client, _):
        watch = client.watch_all(wait=5)
        first = await anext(watch)
        assert first.value == []
        await client.register("calc", "c-1", tool_server())
        second = await anext(watch)
        assert [i.key for i in second.value] == [("calc", "c-1")]
        await watch.aclose()
