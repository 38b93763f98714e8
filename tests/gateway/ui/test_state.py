"""``/ui/state.json`` from a real mesh: registry, echo replicas, a tool server, the gateway."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agents.delegation import PeerClient
from agents.runtime import build_agent_card, card_to_json
from agents.sdk import Agent, IncomingMessage, Reply, SkillContext
from gateway.security import AuthSettings
from gateway.ui.state import trace_id
from tests.agents.mesh import a2a_registration, mcp_registration, register, running_agent
from tests.gateway.integration.mesh import A2A, Mesh, running_mesh
from tests.support.live import free_port
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"


def send(text: str, skill: str = "echo") -> dict[str, Any]:
    message = {
        "messageId": str(uuid.uuid4()),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
        "metadata": {"skill": skill},
    }
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}


async def state(client: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    response = await client.get("/ui/state.json", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def service(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in body["services"] if s["name"] == name)
    return found


async def test_lists_each_agent_with_its_instances_health_and_skills() -> None:
    async with running_mesh() as mesh:
        await register(mesh.registry, "calc", "calc-1", mcp_registration(
            "http://127.0.0.1:9/mcp", ("evaluate", "add")
        ))  # fmt: skip
        body = await eventually(
            lambda: state(mesh.client), lambda b: {s["name"] for s in b["services"]} >= {"calc"}
        )
    echo = service(body, "echo")
    assert echo["kind"] == "a2a-agent"
    assert [(i["id"], i["health"], i["state"]) for i in echo["instances"]] == [
        ("a", "passing", "passing"),
        ("b", "passing", "passing"),
    ]
    assert {s["id"] for s in echo["skills"]} == {"echo", "slow"}
    assert echo["healthy"] == 2
    calc = service(body, "calc")
    assert calc["kind"] == "mcp-server"
    assert calc["tools"] == ["add", "evaluate"]
    assert [s["name"] for s in body["services"]] == ["echo", "calc"]  # agents first
    assert body["summary"] == {
        "services": 2,
        "agents": 1,
        "tool_servers": 1,
        "instances": 3,
        "healthy": 3,
        "tools": 2,
    }
    assert body["gateway"]["loaded"] is True
    assert body["gateway"]["stale"] is False


async def test_an_instance_the_registry_finds_critical_shows_critical() -> None:
    async with running_mesh() as mesh:
        await register(mesh.registry, "echo", "c", echo_like(free_port()), passing=False)
        body = await eventually(
            lambda: state(mesh.client), lambda b: len(service(b, "echo")["instances"]) == 3
        )
    states = {i["id"]: i["state"] for i in service(body, "echo")["instances"]}
    assert states == {"a": "passing", "b": "passing", "c": "critical"}
    assert body["summary"]["healthy"] == 2


def echo_like(port: int) -> Any:
    return a2a_registration("echo", f"http://127.0.0.1:{port}/", ("echo",))


async def test_an_instance_the_gateway_ejected_shows_ejected() -> None:
    # A passing registration at a port nobody listens on: the registry cannot
    # tell (no probe), the gateway's outlier detection can.
    async with running_mesh(balancer="round_robin") as mesh:
        await register(mesh.registry, "echo", "c", echo_like(free_port()))

        async def after_a_message() -> dict[str, Any]:
            answer = await mesh.client.post("/a2a/echo/", json=send("hi"), headers=A2A)
            assert answer.status_code == 200, answer.text  # retried on a live replica
            return await state(mesh.client)

        body = await eventually(
            after_a_message,
            lambda b: any(i["ejected"] for i in service(b, "echo")["instances"]),
        )
    instances = {i["id"]: i for i in service(body, "echo")["instances"]}
    assert instances["c"]["health"] == "passing"
    assert instances["c"]["state"] == "ejected"
    assert not instances["a"]["ejected"]
    assert not instances["b"]["ejected"]


async def test_traffic_and_recent_exchanges_follow_messages() -> None:
    async with running_mesh() as mesh:
        for i in range(4):
            headers = {**A2A, "traceparent": TRACEPARENT} if i == 0 else A2A
            answer = await mesh.client.post("/a2a/echo/", json=send(f"m{i}"), headers=headers)
            assert answer.status_code == 200, answer.text
        body = await state(mesh.client)
    traces = body["traces"]
    assert len(traces) == 4
    assert {t["service"] for t in traces} == {"echo"}
    assert {t["instance"] for t in traces} <= {"a", "b"}
    assert {t["status"] for t in traces} == {200}
    assert all(t["duration_ms"] > 0 for t in traces)
    assert traces[-1]["trace_id"] == TRACE  # newest first: the first message is last
    assert traces[0]["time"] >= traces[-1]["time"]
    (echo,) = [u for u in body["upstreams"] if u["service"] == "echo"]
    assert echo["total"] == 4
    assert echo["errors"] == 0
    (a2a,) = [r for r in body["routes"] if r["route"] == "a2a"]
    assert a2a["total"] == 4
    assert a2a["p50_ms"] is not None
    assert a2a["p99_ms"] >= a2a["p50_ms"]


async def test_rates_cover_messages_since_an_earlier_poll() -> None:
    async with running_mesh() as mesh:
        first = await state(mesh.client)
        assert first["upstreams"] == []
        for i in range(3):
            answer = await mesh.client.post("/a2a/echo/", json=send(f"m{i}"), headers=A2A)
            assert answer.status_code == 200
        body = await state(mesh.client)
    (echo,) = [u for u in body["upstreams"] if u["service"] == "echo"]
    assert body["window_seconds"] > 0
    assert echo["rate"] > 0
    assert echo["mean_ms"] is not None


def relay_agent() -> Agent:
    agent = Agent("relay", "Asks the echo agent, through the gateway.")

    @agent.skill(tags=["relay"])
    async def relay(message: IncomingMessage, ctx: SkillContext) -> Reply:
        """Passes the text on to echo."""
        reply = await ctx.peers.ask(message.text, skill="echo")
        return Reply(text=f"relayed {reply.text}")

    return agent


@contextlib.asynccontextmanager
async def relay_on(mesh: Mesh) -> AsyncIterator[None]:
    assert mesh.url is not None
    async with httpx.AsyncClient(timeout=10) as http:
        peers = PeerClient(mesh.registry, http, gateway_url=mesh.url, self_name="relay")
        agent = relay_agent()
        async with running_agent(agent, peers=peers) as url:
            card = card_to_json(build_agent_card(agent, url))
            await register(
                mesh.registry, "relay", "r", a2a_registration("relay", url, ("relay",), card)
            )
            yield


async def test_a_delegation_shows_as_two_exchanges_of_one_trace() -> None:
    async with running_mesh(serve_gateway=True) as mesh, relay_on(mesh):
        await eventually(
            lambda: state(mesh.client), lambda b: any(s["name"] == "relay" for s in b["services"])
        )
        headers = {**A2A, "traceparent": TRACEPARENT}
        answer = await mesh.client.post("/a2a/relay/", json=send("ping", "relay"), headers=headers)
        assert answer.status_code == 200, answer.text
        assert "relayed" in answer.text, answer.text[:2000]
        body = await state(mesh.client)
    traced = [(t["service"], t["trace_id"]) for t in body["traces"]]
    # The inner exchange (relay -> echo) ends first: newest first, the outer one leads.
    assert traced == [("relay", TRACE), ("echo", TRACE)]


async def test_with_auth_the_page_loads_and_its_state_needs_the_key() -> None:
    key = "ui-test-key-0123456789"
    auth = AuthSettings(api_keys=(key,))
    async with running_mesh(auth=auth, ready_headers={"x-api-key": key}) as mesh:
        client = mesh.client
        for path, kind in (
            ("/ui", "text/html"),
            ("/ui/ui.css", "text/css"),
            ("/ui/ui.js", "text/javascript"),
        ):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith(kind)
            csp = response.headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "script-src 'self'" in csp
            assert "http" not in csp  # no outside origin
        refused = await client.get("/ui/state.json")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await state(client, authorization=f"Bearer {key}"))["summary"]["agents"] == 1


async def test_the_page_loads_nothing_from_outside_the_gateway() -> None:
    async with running_mesh() as mesh:
        page = (await mesh.client.get("/ui")).text
        script = (await mesh.client.get("/ui/ui.js")).text
        style = (await mesh.client.get("/ui/ui.css")).text
    for text in (page, script, style):
        assert "http://" not in text
        assert "https://" not in text
        assert "//" + "cdn" not in text
    assert 'href="/ui/ui.css"' in page
    assert 'src="/ui/ui.js"' in page
    assert "@import" not in style
    assert "url(" not in style


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"traceparent", TRACEPARENT.encode())], TRACE),
        ([(b"Traceparent", TRACEPARENT.upper().encode())], TRACE),
        ([(b"traceparent", b"00-" + b"0" * 32 + b"-b7ad6b7169203331-01")], None),
        ([(b"traceparent", b"00-xyz-b7ad6b7169203331-01")], None),
        ([(b"traceparent", b"00-" + b"g" * 32 + b"-b7ad6b7169203331-01")], None),
        ([(b"traceparent", b"garbage")], None),
        ([(b"content-type", b"application/json")], None),
    ],
)
def test_trace_ids_come_from_valid_traceparent_headers_only(
    headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    assert trace_id(headers) == expected
