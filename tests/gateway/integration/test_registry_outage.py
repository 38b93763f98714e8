"""The registry goes away and comes back; the gateway keeps routing on its last table.

The registry runs on a real port (in a task of its own, so it can be stopped
while the gateway runs); the gateway reaches it over TCP with its own client.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import TaskStatus

from gateway.app import GatewaySettings
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.gateway.integration.mesh import (
    A2A,
    Gates,
    echo_replicas,
    gateway_running,
    register_echo,
    routes_ready,
)
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


class Registry:
    """A fresh in-memory registry on ``port``, served until :meth:`stop`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._stop = anyio.Event()
        self._stopped = anyio.Event()

    async def run(self, *, task_status: TaskStatus[str]) -> None:
        app = create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback()))
        try:
            async with serve(app, port=self.port) as url:
                task_status.started(url)
                await self._stop.wait()
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        self._stop.set()
        with anyio.fail_after(10):
            await self._stopped.wait()


def gauge(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


async def send(client: httpx.AsyncClient, text: str) -> Any:
    message: dict[str, Any] = {"messageId": text, "role": "ROLE_USER", "parts": [{"text": text}]}
    message["metadata"] = {"skill": "echo"}
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    answer = await client.post("/a2a/echo/", json=rpc, headers=A2A)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["task"]["artifacts"][0]["parts"][0]["text"]


async def test_the_gateway_serves_its_last_table_while_the_registry_is_down() -> None:
    gates = Gates()
    port = free_port()
    async with contextlib.AsyncExitStack() as stack:
        tg = await stack.enter_async_context(anyio.create_task_group())
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10, trust_env=False))
        replicas = await stack.enter_async_context(echo_replicas(gates))
        first = Registry(port)
        url = await tg.start(first.run)
        stack.push_async_callback(first.stop)
        await register_echo(RegistryClient(url, http=http), replicas)
        # Short blocking queries: the registry's shutdown need not wait out a long poll.
        settings = GatewaySettings(registry_url=url, watch_wait=0.2, balancer="round_robin")
        _, client, _ = await stack.enter_async_context(gateway_running(settings, None))
        await routes_ready(client)
        ready = (await client.get("/readyz")).json()
        assert ready["stale"] is False
        assert gauge((await client.get("/metrics")).text, "meshgate_gateway_route_table_stale") == 0

        await first.stop()

        async def readyz() -> Any:
            return (await client.get("/readyz")).json()

        down = await eventually(readyz, lambda body: body["stale"] is True)
        assert down["status"] == "ready"  # still serving: on the last table
        assert down["routes"] == ready["routes"]
        replies = {await send(client, f"while down {i}") for i in range(6)}
        assert {r.split(":")[0] for r in replies} == {"A", "B"}

        async def metrics() -> str:
            return (await client.get("/metrics")).text

        text = await metrics()
        assert gauge(text, "meshgate_gateway_route_table_stale") == 1
        age = gauge(text, "meshgate_gateway_route_table_age_seconds")
        assert age > 0
        later = await eventually(
            metrics, lambda t: gauge(t, "meshgate_gateway_route_table_age_seconds") > age
        )
        assert gauge(later, "meshgate_gateway_route_table_stale") == 1

        # A new registry on the same address, empty: the agents register again.
        second = Registry(port)
        assert await tg.start(second.run) == url
        stack.push_async_callback(second.stop)
        await register_echo(RegistryClient(url, http=http), replicas)
        back = await eventually(readyz, lambda body: body["stale"] is False)
        assert back["status"] == "ready"
        await routes_ready(client)
        text = await metrics()
        assert gauge(text, "meshgate_gateway_route_table_stale") == 0
        assert gauge(text, "meshgate_gateway_route_table_age_seconds") == 0
        assert (await send(client, "after"))[1:] == ": after"
