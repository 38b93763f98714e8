"""Pieces of a mesh for the agents' tests: a registry, registrations, a gateway stand-in.

The registry is the real app in-process; peers are real a2a-sdk and MCP servers
on loopback sockets. The gateway arrives in a later issue: :func:`gateway_app`
is a real Starlette app that stands in for it on the two routes delegation and
tool calls use, recording what it was asked and forwarding to the real peers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCard
from google.protobuf.json_format import ParseDict
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agents.runtime import MEMORY_STORE, AgentConfig, build_agent_app
from agents.sdk import Agent, Delegator, LanguageModel, ToolCaller
from mcp_servers.hosting import HostingConfig
from registry.client import RegistryClient
from registry.models import CheckSpec, Kind, Registration
from tests.registry.server.conftest import running_registry
from tests.support.live import free_port, serve
from tests.support.peers import agent_card

__all__ = [
    "TRACE_ID",
    "Recorder",
    "a2a_app",
    "a2a_registration",
    "gateway_app",
    "mcp_registration",
    "register",
    "registry_client",
    "remote_parent",
    "running_agent",
]

#: The trace id of :func:`remote_parent`, as it appears in a ``traceparent``.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@contextlib.asynccontextmanager
async def registry_client() -> AsyncIterator[RegistryClient]:
    """A real registry app (memory store, loopback URLs admitted) and a client for it."""
    async with running_registry() as http:
        yield RegistryClient("http://registry", http=http)


def a2a_registration(
    name: str, url: str, skills: tuple[str, ...], card: Mapping[str, Any] | None = None
) -> Registration:
    """An agent's registration: no active probe, so its TTL alone decides its health."""
    return Registration(
        kind=Kind.A2A_AGENT,
        url=url,
        card=dict(card) if card is not None else agent_card(name, url.rstrip("/") + "/", skills),
        check={"interval_seconds": 0, "ttl_seconds": 60},
    )


def mcp_registration(url: str, tools: tuple[str, ...] = ("add",)) -> Registration:
    return Registration(
        kind=Kind.MCP_SERVER,
        url=url,
        tools=[{"name": t, "inputSchema": {"type": "object"}} for t in tools],
        check={"interval_seconds": 0, "ttl_seconds": 60},
    )


async def register(
    registry: RegistryClient,
    service: str,
    instance: str,
    registration: Registration,
    *,
    passing: bool = True,
) -> None:
    """Register an instance; a heartbeat makes it passing (without one it stays critical)."""
    await registry.register(service, instance, registration)
    if passing:
        await registry.heartbeat(service, instance)


def a2a_app(executor: AgentExecutor, name: str, base_url: str, skills: tuple[str, ...]) -> Any:
    """A bare a2a-sdk agent running ``executor`` (for answers the runtime never gives)."""
    card = ParseDict(agent_card(name, base_url.rstrip("/") + "/", skills), AgentCard())
    handler = DefaultRequestHandler(
        agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    return Starlette(routes=routes)


@contextlib.asynccontextmanager
async def running_agent(
    agent: Agent,
    *,
    tools: ToolCaller | None = None,
    peers: Delegator | None = None,
    llm: LanguageModel | None = None,
    registry_url: str | None = None,
    check: CheckSpec | None = None,
) -> AsyncIterator[str]:
    """Serve ``agent`` with the real runtime on a fresh loopback port; yield its base URL.

    Tasks live in memory. With ``registry_url`` the runtime registers the agent
    itself; without, the test registers it (and decides its health).
    """
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):  # the port is free when picked but may be taken before the bind
            port = free_port()
            hosting = HostingConfig(service=agent.name, port=port, registry_url=registry_url)
            if check is not None:
                hosting = dataclasses.replace(hosting, check=check)
            config = AgentConfig(hosting=hosting, task_store=MEMORY_STORE)
            app = build_agent_app(agent, config, tools=tools, peers=peers, llm=llm)
            try:
                url = await stack.enter_async_context(serve(app, port=port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            else:
                break
        yield url


@contextlib.contextmanager
def remote_parent() -> Any:
    """Make a sampled remote span (trace :data:`TRACE_ID`) current, as a server would."""
    parent = SpanContext(
        trace_id=int(TRACE_ID, 16),
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        yield
    finally:
        otel_context.detach(token)


@dataclass
class Recorder:
    """What the gateway stand-in was asked: paths, headers and JSON bodies."""

    paths: list[str] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)


_HOP_HEADERS = (
    "content-type",
    "accept",
    "a2a-version",
    "mcp-protocol-version",
    "mcp-method",
    "traceparent",
    "tracestate",
)


def gateway_app(
    agents: Mapping[str, str], tool_servers: Mapping[str, str], recorder: Recorder
) -> Starlette:
    """Stand-in gateway: ``/a2a/{agent}/`` (card + JSON-RPC) and ``/mcp`` (``svc__tool``).

    ``agents`` maps agent names to their base URLs, ``tool_servers`` service
    names to MCP URLs. The card's interfaces are rewritten to the gateway, as
    the real gateway will; an unknown agent is 404.
    """
    http = httpx.AsyncClient(timeout=10)

    def note(request: Request, body: Any) -> None:
        recorder.paths.append(request.url.path)
        recorder.headers.append(httpx.Headers(request.headers.items()))
        recorder.bodies.append(body)

    def forwarded(request: Request, **extra: str) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() in _HOP_HEADERS}
        return {**headers, **extra}

    async def card(request: Request) -> Response:
        name = request.path_params["agent"]
        note(request, None)
        if name not in agents:
            return JSONResponse({"detail": "no such agent"}, status_code=404)
        upstream = await http.get(agents[name].rstrip("/") + "/.well-known/agent-card.json")
        data = upstream.json()
        for iface in data.get("supportedInterfaces", []):
            iface["url"] = str(request.base_url).rstrip("/") + f"/a2a/{name}/"
        return JSONResponse(data)

    async def rpc(request: Request) -> Response:
        name = request.path_params["agent"]
        body = await request.body()
        note(request, json.loads(body))
        if name not in agents:
            return JSONResponse({"detail": "no such agent"}, status_code=404)
        upstream = await http.post(
            agents[name].rstrip("/") + "/", content=body, headers=forwarded(request)
        )
        return Response(upstream.content, upstream.status_code, media_type="application/json")

    async def mcp(request: Request) -> Response:
        body = await request.body()
        note(request, json.loads(body))
        message = json.loads(body)  # a copy: the recorded body stays as the client sent it
        service, _, tool = message["params"]["name"].partition("__")
        message["params"]["name"] = tool  # the one field a forwarding gateway rewrites
        upstream = await http.post(
            tool_servers[service], json=message, headers=forwarded(request, **{"mcp-name": tool})
        )
        media = upstream.headers.get("content-type", "application/json")
        return Response(upstream.content, upstream.status_code, media_type=media)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with http:
            yield

    return Starlette(
        routes=[
            Route("/a2a/{agent}/.well-known/agent-card.json", card, methods=["GET"]),
            Route("/a2a/{agent}/", rpc, methods=["POST"]),
            Route("/mcp", mcp, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
