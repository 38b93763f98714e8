"""One trace covers client, gateway, planner, gateway again and the delegated agents."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry import trace

from agents.calculator import agent as calculator
from agents.delegation import PeerClient
from agents.planner import agent as planner
from agents.researcher import agent as researcher
from agents.tools import MeshTools
from gateway.app import GatewaySettings, create_gateway
from mcp_servers.calc import create_server as create_calc
from mcp_servers.knowledge import create_server as create_knowledge
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.models import AgentQuery
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.agents.mesh import running_agent
from tests.integration.test_reference_mesh import CHECK, on_free_port, tool_server
from tests.support.live import serve
from tests.support.polling import eventually
from tests.support.tracing import span_recorder

pytestmark = pytest.mark.anyio

QUESTION = "What does the with statement do, and what is 17*23?"


@dataclass(frozen=True)
class Mesh:
    http: httpx.AsyncClient
    gateway: str


@contextlib.asynccontextmanager
async def mesh_behind_a_gateway() -> AsyncIterator[Mesh]:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=20, trust_env=False))
        settings = RegistrySettings(url_policy=UrlPolicy.loopback())
        registry_url = await stack.enter_async_context(serve(create_app(MemoryBackend(), settings)))
        registry = RegistryClient(registry_url, http=http)
        gateway_app = create_gateway(GatewaySettings(registry_url=registry_url, watch_wait=5))
        gateway = await stack.enter_async_context(serve(gateway_app))
        for name, factory in (("knowledge", create_knowledge), ("calc", create_calc)):
            await stack.enter_async_context(on_free_port(tool_server(name, factory, registry_url)))
        for agent in (researcher, calculator, planner):
            await stack.enter_async_context(
                running_agent(
                    agent,
                    # Delegation goes through the gateway; tool calls (whose
                    # gateway route is the next issue's /mcp) go direct.
                    tools=MeshTools(registry, http=http, gateway_url=None),
                    peers=PeerClient(registry, http, gateway_url=gateway, self_name=agent.name),
                    registry_url=registry_url,
                    check=CHECK,
                )
            )

        async def routable() -> set[str]:
            listed = (await http.get(gateway + "/v1/agents")).json()
            passing = (await registry.agents(AgentQuery(passing_only=True))).value
            return {a["name"] for a in listed} & {i.service for i in passing}

        await eventually(routable, lambda names: len(names) == 3, within=20)
        yield Mesh(http, gateway)


async def test_a_delegated_question_is_one_trace_across_every_hop() -> None:
    recorder = span_recorder()
    async with mesh_behind_a_gateway() as mesh:
        recorder.clear()
        tracer = trace.get_tracer("test-client")
        with tracer.start_as_current_span("client") as root:
            carrier = {"A2A-Version": "1.0"}
            trace_id = format(root.get_span_context().trace_id, "032x")
            span_id = format(root.get_span_context().span_id, "016x")
            carrier["traceparent"] = f"00-{trace_id}-{span_id}-01"
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendMessage",
                "params": {
                    "message": {
                        "messageId": str(uuid.uuid4()),
                        "role": "ROLE_USER",
                        "parts": [{"text": QUESTION}],
                    }
                },
            }
            answer = (
                await mesh.http.post(mesh.gateway + "/a2a/planner/", json=body, headers=carrier)
            ).json()
        task = answer["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"

    # The mesh's own spans (the MCP SDK's spans of the registry's health probes
    # are traces of their own, and not the question's).
    spans = [s for s in recorder.get_finished_spans() if s.name.startswith("mesh.")]
    ids = {format(s.context.trace_id, "032x") for s in spans}
    assert ids == {trace_id}, "every span of the question belongs to the client's trace"
    routes = sorted(
        (str(attributes.get("mesh.route")), str(attributes.get("mesh.target")))
        for s in spans
        if s.name == "mesh.route" and (attributes := s.attributes or {})
    )
    # The client asks the planner through the gateway; the planner fetches the
    # cards of the researcher and the calculator and asks them, through it too.
    assert routes == [
        ("a2a", "calculator"),
        ("a2a", "planner"),
        ("a2a", "researcher"),
        ("card", "calculator"),
        ("card", "researcher"),
    ]
    names = {s.name for s in spans}
    assert {"mesh.route", "mesh.upstream", "mesh.delegate", "mesh.skill"} <= names
    skills = sorted(
        str((s.attributes or {}).get("mesh.skill", "")) for s in spans if s.name == "mesh.skill"
    )
    assert skills == ["answer", "calculate", "research"]
