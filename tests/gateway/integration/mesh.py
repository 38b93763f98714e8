"""A real mesh for the gateway's tests: a registry, two echo replicas, the gateway app.

Nothing is a stand-in. The registry is the real app (in-process, or on a
loopback socket where a test must take it away); the replicas are
:class:`agents.sdk.Agent` s served by the real runtime on loopback ports, each
with its own in-memory task store; the gateway is :func:`create_gateway` with
its lifespan running. Tests reach the gateway in-process (``ASGITransport``)
and, where a process outside this one must reach it, on a real port.

The echo agent has two skills: ``echo`` reports progress and answers
``"{replica}: {text}"`` (so tests see which replica answered), ``slow``
reports progress and then waits on a :class:`Gates` event named by its text
(so cancellation and streaming tests decide when it moves, without sleeping).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette

from agents.runtime import build_agent_card, card_to_json
from agents.sdk import Agent, IncomingMessage, Reply, SkillContext
from gateway.app import Gateway, GatewaySettings, create_gateway
from registry.client import RegistryClient
from registry.models import Registration
from tests.agents.mesh import a2a_registration, register, running_agent
from tests.registry.server.conftest import running_registry
from tests.support.live import serve
from tests.support.polling import eventually

__all__ = [
    "A2A",
    "GATEWAY",
    "REPLICAS",
    "SIGNATURE",
    "Gates",
    "Mesh",
    "echo_agent",
    "echo_registration",
    "echo_replicas",
    "gateway_running",
    "register_echo",
    "routes_ready",
    "running_mesh",
]

#: Replica names; each answers ``"{name}: {text}"`` and is registered as instance ``name.lower()``.
REPLICAS = ("A", "B")
#: The header A2A 1.0 requires on every JSON-RPC call.
A2A = {"A2A-Version": "1.0"}
#: The base URL of the in-process client (cards served to it point here).
GATEWAY = "http://gateway"
#: A JWS signature as a card carries one: it covers the agent's own URLs.
SIGNATURE = {"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "bm90LWEtcmVhbC1zaWduYXR1cmU"}


class Gates:
    """Events the ``slow`` skill waits on, one per message text."""

    def __init__(self) -> None:
        self._started: defaultdict[str, anyio.Event] = defaultdict(anyio.Event)
        self._released: defaultdict[str, anyio.Event] = defaultdict(anyio.Event)
        self._closed = False

    async def hold(self, key: str) -> None:
        self._started[key].set()
        if not self._closed:
            await self._released[key].wait()

    async def started(self, key: str) -> None:
        """Wait until a ``slow`` run holds at ``key``."""
        with anyio.fail_after(5):
            await self._started[key].wait()

    def release(self, key: str) -> None:
        self._released[key].set()

    def close(self) -> None:
        """Release every gate, now and later (before the replicas shut down)."""
        self._closed = True
        for event in self._released.values():
            event.set()


def echo_agent(replica: str, gates: Gates) -> Agent:
    agent = Agent("echo", "Echoes text back, naming the replica that answered.")

    @agent.skill(tags=["echo"])
    async def echo(message: IncomingMessage, ctx: SkillContext) -> Reply:
        """Answers the text, prefixed by the replica's name."""
        await ctx.progress(f"{replica} is echoing")
        return Reply(text=f"{replica}: {message.text}")

    @agent.skill(tags=["slow"])
    async def slow(message: IncomingMessage, ctx: SkillContext) -> Reply:
        """Reports progress, then waits until the test releases it."""
        await ctx.progress(f"{replica} is waiting")
        await gates.hold(message.text)
        return Reply(text=f"{replica}: done {message.text}")

    return agent


def echo_registration(url: str) -> Registration:
    """The registration of a replica at ``url``: its real card, plus a signature."""
    card: dict[str, Any] = card_to_json(build_agent_card(echo_agent("card", Gates()), url))
    card["signatures"] = [SIGNATURE]
    return a2a_registration("echo", url, ("echo", "slow"), card=card)


@contextlib.asynccontextmanager
async def echo_replicas(gates: Gates) -> AsyncIterator[dict[str, str]]:
    """Both replicas on loopback ports: ``{replica: base URL}``."""
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for replica in REPLICAS:
            urls[replica] = await stack.enter_async_context(
                running_agent(echo_agent(replica, gates))
            )
        stack.callback(gates.close)  # runs first: no skill keeps a replica's drain waiting
        yield urls


async def register_echo(registry: RegistryClient, replicas: Mapping[str, str]) -> None:
    for replica, url in replicas.items():
        await register(registry, "echo", replica.lower(), echo_registration(url))


@contextlib.asynccontextmanager
async def gateway_running(
    settings: GatewaySettings, http: httpx.AsyncClient | None, *, served: bool = False
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, str | None]]:
    """The gateway app with its lifespan running; an in-process client; its URL if ``served``."""
    app = create_gateway(settings, http=http)
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if served:
            url = await stack.enter_async_context(serve(app))  # serve runs the lifespan
        else:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=GATEWAY, timeout=10)
        )
        yield app, client, url


async def routes_ready(
    client: httpx.AsyncClient,
    routable: int = len(REPLICAS),
    *,
    service: str = "echo",
    headers: Mapping[str, str] | None = None,
) -> None:
    """Poll ``GET /v1/agents`` until ``service`` has ``routable`` routable instances."""

    async def agents() -> httpx.Response:
        return await client.get("/v1/agents", headers=headers)

    def ready(response: httpx.Response) -> bool:
        return response.status_code == 200 and any(
            a["name"] == service and a["routable"] == routable for a in response.json()
        )

    await eventually(agents, ready)


@dataclass(frozen=True)
class Mesh:
    app: Starlette
    #: The in-process client of the gateway (base URL :data:`GATEWAY`).
    client: httpx.AsyncClient
    registry: RegistryClient
    #: ``{replica: base URL}`` of the echo replicas (direct, not through the gateway).
    replicas: dict[str, str]
    gates: Gates
    #: The gateway on a real loopback port (``serve_gateway=True``), else ``None``.
    url: str | None

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway


@contextlib.asynccontextmanager
async def running_mesh(
    *,
    serve_gateway: bool = False,
    ready_headers: Mapping[str, str] | None = None,
    **settings: Any,
) -> AsyncIterator[Mesh]:
    """An in-process registry, both echo replicas registered passing, the gateway on it.

    ``settings`` go to :class:`GatewaySettings`; the gateway's control-plane
    client is the registry's in-process client.
    """
    gates = Gates()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(running_registry())
        registry = RegistryClient("http://registry", http=http)
        replicas = await stack.enter_async_context(echo_replicas(gates))
        await register_echo(registry, replicas)
        gateway_settings = GatewaySettings(registry_url="http://registry", **settings)
        app, client, url = await stack.enter_async_context(
            gateway_running(gateway_settings, http, served=serve_gateway)
        )
        await routes_ready(client, headers=ready_headers)
        yield Mesh(app, client, registry, replicas, gates, url)
