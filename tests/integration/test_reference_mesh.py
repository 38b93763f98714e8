"""The reference mesh, whole: registry, tool servers and agents, each on its own socket.

Every component registers itself with the registry and is health-checked by
it; the planner finds its peers there by skill, and they find the tool
servers. No gateway yet: delegation and tool calls go to registered instances.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.types import AgentCard, Message, Part, Role, SendMessageRequest, TaskState
from google.protobuf.json_format import ParseDict
from starlette.applications import Starlette

from agents.calculator import agent as calculator
from agents.delegation import PeerClient
from agents.errors import PeerFailed
from agents.planner import agent as planner
from agents.researcher import agent as researcher
from agents.summarizer import agent as summarizer
from agents.tools import MeshTools
from mcp_servers.calc import create_server as create_calc
from mcp_servers.hosting import HostingConfig
from mcp_servers.knowledge import create_server as create_knowledge
from mcp_servers.runtime import build_tool_server_app
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.models import AgentQuery, CheckSpec
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.agents.mesh import TRACE_ID, remote_parent, running_agent
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

QUESTION = "What does the with statement do, and what is 17*23?"
# Fast probes, so that the mesh is healthy (probed, not just registered) quickly.
CHECK = CheckSpec(ttl_seconds=10, interval_seconds=1, deregister_critical_after_seconds=60)
AGENTS = (researcher, calculator, summarizer, planner)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Mesh:
    registry: RegistryClient
    #: The client every agent (and the test) sends with; ``sent`` records its requests.
    http: httpx.AsyncClient
    urls: dict[str, str]
    sent: list[httpx.Request]


@contextlib.asynccontextmanager
async def on_free_port(make: Callable[[int], Starlette]) -> AsyncIterator[str]:
    """Serve the app ``make(port)`` builds (it must know its port to register it)."""
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):  # the port is free when picked but may be taken before the bind
            port = free_port()
            try:
                url = await stack.enter_async_context(serve(make(port), port=port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            else:
                break
        yield url


def tool_server(name: str, factory: Callable[[], Any], registry_url: str) -> Callable[[int], Any]:
    def make(port: int) -> Starlette:
        hosting = HostingConfig(service=name, port=port, registry_url=registry_url, check=CHECK)
        return build_tool_server_app(factory(), hosting)

    return make


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    async with contextlib.AsyncExitStack() as stack:
        sent: list[httpx.Request] = []

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=10, trust_env=False, event_hooks={"request": [record]})
        )
        settings = RegistrySettings(url_policy=UrlPolicy.loopback())
        registry_url = await stack.enter_async_context(serve(create_app(MemoryBackend(), settings)))
        registry = RegistryClient(registry_url, http=http)
        urls = {}
        for name, factory in (("knowledge", create_knowledge), ("calc", create_calc)):
            urls[name] = await stack.enter_async_context(
                on_free_port(tool_server(name, factory, registry_url))
            )
        for agent in AGENTS:
            urls[agent.name] = await stack.enter_async_context(
                running_agent(
                    agent,
                    tools=MeshTools(registry, http=http, gateway_url=None),
                    peers=PeerClient(registry, http, gateway_url=None, self_name=agent.name),
                    registry_url=registry_url,
                    check=CHECK,
                )
            )

        async def passing() -> set[str]:
            found = (await registry.agents(AgentQuery(passing_only=True))).value
            tools = [
                i
                for name in ("knowledge", "calc")
                for i in (await registry.instances(name, passing_only=True)).value
            ]
            return {i.service for i in [*found, *tools]}

        await eventually(passing, lambda names: names == set(urls), within=20)
        yield Mesh(registry, http, urls, sent)


async def test_the_planner_answers_by_delegation(mesh: Mesh) -> None:
    asker = PeerClient(mesh.registry, mesh.http, gateway_url=None)
    reply = await asker.ask(QUESTION, skill="answer", context_id="conversation-1")
    assert "391" in reply.text
    assert "with" in reply.text
    sources = {(c.source, c.agent) for c in reply.citations}
    assert ("knowledge:with", "researcher") in sources
    assert reply.data is not None
    steps = reply.data["steps"]
    assert [s["skill"] for s in steps] == ["research", "calculate"]
    assert steps[1]["data"] == {"expression": "17 * 23", "value": 391}


async def test_one_trace_crosses_every_hop(mesh: Mesh) -> None:
    mesh.sent.clear()
    with remote_parent():
        await PeerClient(mesh.registry, mesh.http, gateway_url=None).ask(QUESTION, skill="answer")
    by_port = {httpx.URL(url).port: name for name, url in mesh.urls.items()}
    hops = [(by_port[r.url.port], r) for r in mesh.sent if r.url.port in by_port]
    # The test asks the planner; the planner its two peers; each of those its tool server.
    assert {name for name, _ in hops} == set(mesh.urls) - {"summarizer"}
    for name, request in hops:
        assert request.headers["traceparent"].split("-")[1] == TRACE_ID, name


async def test_streaming_shows_progress_before_the_answer(mesh: Mesh) -> None:
    card_json = (await mesh.http.get(mesh.urls["planner"] + "/.well-known/agent-card.json")).json()
    card = ParseDict(card_json, AgentCard(), ignore_unknown_fields=True)
    async with httpx.AsyncClient(timeout=30, headers={"A2A-Version": "1.0"}) as http:
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
        message = Message(role=Role.ROLE_USER, message_id="m-1", parts=[Part(text=QUESTION)])
        message.metadata.update({"skill": "answer"})
        events: list[tuple[str, str]] = []
        async for event in client.send_message(SendMessageRequest(message=message)):
            if event.HasField("status_update"):
                status = event.status_update.status
                said = " ".join(p.text for p in status.message.parts)
                events.append((TaskState.Name(status.state), said))
            elif event.HasField("artifact_update"):
                text = " ".join(p.text for p in event.artifact_update.artifact.parts)
                events.append(("artifact", text))
    progress = [i for i, (_, said) in enumerate(events) if said.startswith("step ")]
    answer = next(i for i, (kind, _) in enumerate(events) if kind == "artifact")
    assert len(progress) == 2
    assert "asking a research agent" in events[progress[0]][1]
    assert "asking a calculate agent" in events[progress[1]][1]
    assert max(progress) < answer
    assert "391" in events[answer][1]
    assert events[-1][0] == "TASK_STATE_COMPLETED"


async def test_long_text_goes_to_the_summarizer(mesh: Mesh) -> None:
    text = (
        "The with statement wraps a block in the methods of a context manager. "
        "A context manager sets up a runtime context and tears it down again. "
        "Files are the usual example: the file is closed when the block ends. "
        "Locks are another: the lock is released even when the block raises. "
        "The weather plays no part in any of this, though it was sunny today. "
        "Context managers make cleanup code reusable across many with statements."
    )
    reply = await PeerClient(mesh.registry, mesh.http, gateway_url=None).ask(text, skill="answer")
    assert reply.data is not None
    [step] = reply.data["steps"]
    assert step["skill"] == "summarize"
    assert step["data"]["of"] == 6
    assert 1 <= step["data"]["sentences"] < 6
    assert "weather" not in reply.text


async def test_a_part_that_fails_is_reported_not_fatal(mesh: Mesh) -> None:
    asker = PeerClient(mesh.registry, mesh.http, gateway_url=None)
    reply = await asker.ask("What is a lambda? What is 1/0?", skill="answer")
    assert "Lambdas" in reply.text
    assert "no answer" in reply.text
    assert "division by zero" in reply.text
    with pytest.raises(PeerFailed, match="no part of the question"):
        await asker.ask("What is 1/0?", skill="answer")
