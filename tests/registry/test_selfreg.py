"""SelfRegistration against real registry apps, including restarts and outages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.errors import InvalidRequest, NotFound
from registry.models import Health, Instance, Kind, Registration
from registry.selfreg import SelfRegistration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.registry.server.conftest import running_registry
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

T = TypeVar("T")

# No active probe, and a short TTL, so heartbeats alone decide health quickly.
TOOLS = Registration(
    kind=Kind.MCP_SERVER,
    url="http://127.0.0.1:9100/mcp",
    tools=[{"name": "add", "inputSchema": {"type": "object"}}],
    check={"interval_seconds": 0, "ttl_seconds": 0.5},
)


def registry_app(backend: MemoryBackend) -> Starlette:
    return create_app(backend, RegistrySettings(url_policy=UrlPolicy.loopback()))


def health_in(backend: MemoryBackend) -> Callable[[], Awaitable[Health | None]]:
    """A probe reading calc/c-1's health straight from a registry's store."""

    async def probe() -> Health | None:
        try:
            return (await backend.get("calc", "c-1")).health
        except NotFound:
            return None

    return probe


def current(get: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return get()

    return probe


class Counter:
    """An httpx request hook counting requests by path suffix."""

    def __init__(self) -> None:
        self.heartbeats = 0
        self.total = 0

    async def __call__(self, request: httpx.Request) -> None:
        self.total += 1
        if request.url.path.endswith("/heartbeat"):
            self.heartbeats += 1


async def test_registers_heartbeats_to_passing_and_deregisters_on_exit() -> None:
    async with running_registry() as http:
        counter = Counter()
        http.event_hooks["request"].append(counter)
        client = RegistryClient("http://registry", http=http)
        async with SelfRegistration(client, "calc", "c-1", TOOLS) as reg:
            record = await reg.wait_registered()
            assert reg.registered.is_set()
            assert (record.service, record.id) == ("calc", "c-1")
            await eventually(
                lambda: client.get("calc", "c-1"), lambda i: i.health is Health.PASSING
            )
            # Heartbeats at a third of the 0.5 s TTL keep it passing across several TTLs.
            await eventually(current(lambda: counter.heartbeats), lambda n: n >= 6)
            assert (await client.get("calc", "c-1")).health is Health.PASSING

            reg.set_status(Health.WARNING, "overloaded")
            warned = await eventually(
                lambda: client.get("calc", "c-1"), lambda i: i.health is Health.WARNING
            )
            assert [c.output for c in warned.checks] == ["overloaded"]
            assert reg.record is not None
        with pytest.raises(NotFound):
            await client.get("calc", "c-1")


async def test_re_registers_after_the_registry_restarts_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="meshgate.selfreg")
    port = free_port()
    first, second = MemoryBackend(), MemoryBackend()
    async with httpx.AsyncClient() as http, anyio.create_task_group() as tg:
        client = RegistryClient(f"http://127.0.0.1:{port}", http=http)
        reg = SelfRegistration(client, "calc", "c-1", TOOLS)
        tg.start_soon(reg.run)
        async with serve(registry_app(first), port=port):
            await reg.wait_registered()
            await eventually(health_in(first), lambda h: h is Health.PASSING)

        async with serve(registry_app(second), port=port):
            # The new store has never heard of c-1: a heartbeat answers 404,
            # and the instance registers again and turns passing.
            await eventually(health_in(second), lambda h: h is Health.PASSING)
            tg.cancel_scope.cancel()
            # run() deregisters on its way out, even though it was cancelled.
        assert await health_in(second)() is None
    assert "registry forgot calc/c-1; registering again" in caplog.messages


async def test_keeps_trying_while_the_registry_is_down() -> None:
    port = free_port()
    counter = Counter()
    backend = MemoryBackend()
    async with (
        httpx.AsyncClient(event_hooks={"request": [counter]}) as http,
        anyio.create_task_group() as tg,
    ):
        client = RegistryClient(f"http://127.0.0.1:{port}", http=http)
        reg = SelfRegistration(client, "calc", "c-1", TOOLS)
        tg.start_soon(reg.run)
        await eventually(current(lambda: counter.total), lambda n: n >= 3)
        assert not reg.registered.is_set()
        async with serve(registry_app(backend), port=port):
            with anyio.fail_after(3):
                await reg.wait_registered()
            await eventually(health_in(backend), lambda h: h is Health.PASSING)
            tg.cancel_scope.cancel()
        assert await health_in(backend)() is None


async def test_an_error_in_the_owner_propagates_and_still_deregisters() -> None:
    async with running_registry() as http:
        client = RegistryClient("http://registry", http=http)

        async def owner() -> None:
            async with SelfRegistration(client, "calc", "c-1", TOOLS) as reg:
                await reg.wait_registered()
                raise RuntimeError("owner failed")

        with pytest.raises(RuntimeError, match="owner failed"):
            await owner()
        with pytest.raises(NotFound):
            await client.get("calc", "c-1")


async def test_a_refusal_after_success_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    async with running_registry(api_keys=("key-a", "key-b")) as http:
        mine = RegistryClient("http://registry", http=http, api_key="key-a")
        theirs = RegistryClient("http://registry", http=http, api_key="key-b")
        async with SelfRegistration(mine, "calc", "c-1", TOOLS) as reg:
            await reg.wait_registered()
            # The name changes hands while c-1 is away: re-registering is refused...
            await mine.deregister("calc", "c-1")
            await theirs.register("calc", "c-2", TOOLS)
            await eventually(
                current(lambda: caplog.messages),
                lambda m: any(x.startswith("registry refused calc/c-1 again") for x in m),
            )
            # ...until it is free again; the loop kept going meanwhile.
            await theirs.deregister("calc", "c-2")
            await eventually(
                lambda: mine.instances("calc"), lambda s: [i.id for i in s.value] == ["c-1"]
            )


async def test_cancelling_the_owner_deregisters() -> None:
    async with running_registry() as http:
        client = RegistryClient("http://registry", http=http)
        with anyio.CancelScope() as outer:
            async with SelfRegistration(client, "calc", "c-1", TOOLS) as reg:
                await reg.wait_registered()
                outer.cancel()
                await anyio.sleep_forever()
        assert outer.cancelled_caught
        with pytest.raises(NotFound):
            await client.get("calc", "c-1")


async def test_exit_while_the_registry_is_down_logs_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    counter = Counter()
    async with httpx.AsyncClient(event_hooks={"request": [counter]}) as http:
        client = RegistryClient(f"http://127.0.0.1:{port}", http=http)
        with caplog.at_level(logging.INFO, logger="meshgate.selfreg"):
            async with SelfRegistration(client, "calc", "c-1", TOOLS):
                await eventually(current(lambda: counter.total), lambda n: n >= 1)
    messages = [r.getMessage() for r in caplog.records if r.name == "meshgate.selfreg"]
    assert any(m.startswith("cannot register calc/c-1 yet") for m in messages)
    assert any(m.startswith("could not deregister calc/c-1") for m in messages)


async def test_a_refused_registration_is_reported_not_retried() -> None:
    no_card = Registration(kind=Kind.A2A_AGENT, url="http://127.0.0.1:9001/")
    async with running_registry() as http:
        counter = Counter()
        http.event_hooks["request"].append(counter)
        client = RegistryClient("http://registry", http=http)
        async with SelfRegistration(client, "researcher", "r-1", no_card) as reg:
            with pytest.raises(InvalidRequest) as refused:
                await reg.wait_registered()
            assert [e.field for e in refused.value.errors] == ["card"]
        with pytest.raises(InvalidRequest):
            await SelfRegistration(client, "researcher", "r-1", no_card).run()
    # One registration attempt each, plus one best-effort deregistration each.
    assert counter.total == 4


async def test_status_reports_reach_the_registry_through_run() -> None:
    async with running_registry() as http, anyio.create_task_group() as tg:
        client = RegistryClient("http://registry", http=http)
        reg = SelfRegistration(client, "calc", "c-1", TOOLS, heartbeat_fraction=0.9)
        tg.start_soon(reg.run)
        await reg.wait_registered()
        reg.set_status(Health.CRITICAL, "disk full")
        record: Instance = await eventually(
            lambda: client.get("calc", "c-1"), lambda i: i.health is Health.CRITICAL
        )
        assert record.checks[0].output == "disk full"
        reg.set_status(Health.PASSING)
        await eventually(lambda: client.get("calc", "c-1"), lambda i: i.health is Health.PASSING)
        tg.cancel_scope.cancel()


async def test_heartbeat_fraction_is_checked() -> None:
    async with httpx.AsyncClient() as http:
        client = RegistryClient("http://registry", http=http)
        with pytest.raises(ValueError, match="heartbeat_fraction"):
            SelfRegistration(client, "calc", "c-1", TOOLS, heartbeat_fraction=0)
