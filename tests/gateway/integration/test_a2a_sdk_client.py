"""a2a-sdk's own client against ``/a2a/echo/`` and ``/a2a/skills/echo/``, as against an agent.

The same scenario runs directly against one replica and through the gateway,
on each binding the card offers (JSON-RPC, HTTP+JSON), and the observable
outcomes are compared with the replica's name blanked out. Through the
gateway there are two replicas with separate task stores and a round-robin
balancer, so follow-ups (GetTask, CancelTask, a message continuing a task)
work only if the gateway sends each to the replica that owns the task.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from a2a.client import (
    A2ACardResolver,
    AgentCardResolutionError,
    Client,
    ClientConfig,
    ClientFactory,
)
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import UnsupportedOperationError
from google.protobuf.json_format import MessageToDict

from tests.gateway.integration.mesh import A2A, GATEWAY, REPLICAS, Gates, Mesh
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

#: Sends whose tasks are read back (plus half as many by streaming): without
#: affinity, round robin would send most reads to the replica without the task.
FOLLOW_UPS = 8


@pytest.fixture
async def direct() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        yield http


def message(text: str, skill: str | None = None) -> SendMessageRequest:
    sent = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    if skill is not None:
        sent.metadata.update({"skill": skill})
    return SendMessageRequest(message=sent)


def blank(text: str) -> str:
    """``text`` with the replica's name blanked (``"A: hi"`` -> ``"*: hi"``)."""
    return re.sub(rf"\b({'|'.join(REPLICAS)})\b", "*", text)


def replica_of(text: str) -> str:
    return text.split(":")[0]


def artifact_text(task: Task) -> str:
    return " ".join(p.text for a in task.artifacts for p in a.parts if p.HasField("text"))


def event_view(event: StreamResponse) -> tuple[str, str]:
    """One streamed event as ``(kind, state or text)``, replica blanked."""
    if event.HasField("task"):
        return "task", TaskState.Name(event.task.status.state)
    if event.HasField("status_update"):
        status = event.status_update.status
        said = " ".join(p.text for p in status.message.parts)
        return "status", blank(f"{TaskState.Name(status.state)} {said}".strip())
    if event.HasField("artifact_update"):
        return "artifact", blank(" ".join(p.text for p in event.artifact_update.artifact.parts))
    return "message", ""


async def card_at(http: httpx.AsyncClient, url: str) -> AgentCard:
    return await A2ACardResolver(http, url).get_agent_card()


BINDINGS = ["JSONRPC", "HTTP+JSON"]


def client_for(
    http: httpx.AsyncClient, card: AgentCard, *, streaming: bool, binding: str = "JSONRPC"
) -> Client:
    """The SDK's client for ``card``, on one of the protocol bindings the card offers."""
    config = ClientConfig(
        httpx_client=http, streaming=streaming, supported_protocol_bindings=[binding]
    )
    return ClientFactory(config).create(card)


async def only_task(client: Client, request: SendMessageRequest) -> Task:
    events = [event async for event in client.send_message(request)]
    assert len(events) == 1, events
    assert events[0].HasField("task"), events
    return events[0].task


@dataclass
class Outcome:
    """What a caller can observe of the scenario, comparable across routes."""

    interfaces: list[tuple[str, str]]
    card: dict[str, Any]
    sent: tuple[str, str]
    streamed: list[tuple[str, str]]
    read_back: list[tuple[str, str]]
    replicas: set[str]
    canceled: tuple[str, str]


async def scenario(http: httpx.AsyncClient, url: str, gates: Gates, binding: str) -> Outcome:
    """Card, SendMessage, SendStreamingMessage, GetTask and CancelTask at ``url``."""
    card = await card_at(http, url)
    interfaces = [(i.protocol_binding, i.url) for i in card.supported_interfaces]
    plain = MessageToDict(card)
    plain.pop("supportedInterfaces")
    client = client_for(http, card, streaming=False, binding=binding)
    streaming = client_for(http, card, streaming=True, binding=binding)

    task = await only_task(client, message("hello", "echo"))
    sent = (TaskState.Name(task.status.state), blank(artifact_text(task)))

    streamed = [event_view(e) async for e in streaming.send_message(message("hi", "echo"))]

    tasks = [task] + [await only_task(client, message(f"n{i}", "echo")) for i in range(FOLLOW_UPS)]
    expected = {t.id: artifact_text(t) for t in tasks}
    read_back = []

    async def read(task_id: str) -> None:
        got = await client.get_task(GetTaskRequest(id=task_id))
        assert got.id == task_id
        assert artifact_text(got) == expected[task_id]  # the very task, from its owner
        read_back.append((TaskState.Name(got.status.state), blank(expected[task_id])))

    for created in tasks:
        await read(created.id)
    for i in range(FOLLOW_UPS // 2):  # tasks created by streams, each read back at once
        events = [e async for e in streaming.send_message(message(f"s{i}", "echo"))]
        expected[events[0].task.id] = events[-2].artifact_update.artifact.parts[0].text
        await read(events[0].task.id)

    key = f"cancel-{uuid.uuid4()}"
    request = message(key, "slow")
    request.configuration.return_immediately = True
    held = await only_task(client, request)
    await gates.started(key)
    canceled = await client.cancel_task(CancelTaskRequest(id=held.id))
    after = await client.get_task(GetTaskRequest(id=held.id))
    await client.close()
    await streaming.close()
    return Outcome(
        interfaces=interfaces,
        card=plain,
        sent=sent,
        streamed=streamed,
        read_back=read_back,
        replicas={replica_of(text) for text in expected.values()},
        canceled=(TaskState.Name(canceled.status.state), TaskState.Name(after.status.state)),
    )


@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_sdk_client_sees_the_same_agent_directly_and_through_the_gateway(
    mesh: Mesh, direct: httpx.AsyncClient, binding: str
) -> None:
    replica = mesh.replicas["A"]
    alone = await scenario(direct, replica + "/", mesh.gates, binding)
    routed = await scenario(mesh.client, f"{GATEWAY}/a2a/echo/", mesh.gates, binding)

    assert alone.interfaces == [("JSONRPC", replica + "/"), ("HTTP+JSON", replica)]
    assert routed.interfaces == [
        ("JSONRPC", f"{GATEWAY}/a2a/echo/"),
        ("HTTP+JSON", f"{GATEWAY}/a2a/echo"),
    ]
    assert routed.card == alone.card
    assert routed.sent == alone.sent == ("TASK_STATE_COMPLETED", "*: hello")
    assert routed.streamed == alone.streamed
    kinds = [kind for kind, _ in routed.streamed]
    assert kinds.index("artifact") > routed.streamed.index(
        ("status", "TASK_STATE_WORKING * is echoing")
    )
    assert routed.streamed[-1] == ("status", "TASK_STATE_COMPLETED")
    assert routed.read_back == alone.read_back
    assert alone.replicas == {"A"}
    assert routed.replicas == {"A", "B"}  # both replicas own some of the tasks read back
    assert routed.canceled == alone.canceled == ("TASK_STATE_CANCELED", "TASK_STATE_CANCELED")


async def test_the_gateway_card_drops_signatures_that_covered_the_agents_urls(
    mesh: Mesh,
) -> None:
    registered = await mesh.registry.get("echo", "a")
    assert registered.card is not None
    assert registered.card["signatures"]
    served = await mesh.client.get("/a2a/echo/.well-known/agent-card.json")
    assert served.status_code == 200
    assert "signatures" not in served.json()
    assert all(
        i["url"].startswith(f"{GATEWAY}/a2a/echo") for i in served.json()["supportedInterfaces"]
    )


async def test_the_skill_route_serves_a_card_on_itself(mesh: Mesh) -> None:
    card = await card_at(mesh.client, f"{GATEWAY}/a2a/skills/echo/")
    assert card.name == "echo"
    assert [(i.protocol_binding, i.url) for i in card.supported_interfaces] == [
        ("JSONRPC", f"{GATEWAY}/a2a/skills/echo/"),
        ("HTTP+JSON", f"{GATEWAY}/a2a/skills/echo"),
    ]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_skill_route_names_the_skill_when_the_caller_did_not(
    mesh: Mesh, binding: str
) -> None:
    card = await card_at(mesh.client, f"{GATEWAY}/a2a/skills/echo/")
    client = client_for(mesh.client, card, streaming=False, binding=binding)
    # The agent has two skills: without the gateway's metadata.skill it would refuse.
    task = await only_task(client, message("hi"))
    assert TaskState.Name(task.status.state) == "TASK_STATE_COMPLETED"
    assert blank(artifact_text(task)) == "*: hi"
    # The caller's own choice (message metadata) wins over the route's.
    key = f"chosen-{uuid.uuid4()}"
    request = message(key, "slow")
    request.configuration.return_immediately = True
    held = await only_task(client, request)
    await mesh.gates.started(key)
    mesh.gates.release(key)
    done = await eventually(
        lambda: client.get_task(GetTaskRequest(id=held.id)),
        lambda task: task.status.state == TaskState.TASK_STATE_COMPLETED,
    )
    assert blank(artifact_text(done)) == f"*: done {key}"
    await client.close()


async def test_an_unknown_skill_is_not_found(mesh: Mesh) -> None:
    with pytest.raises(AgentCardResolutionError) as raised:
        await card_at(mesh.client, f"{GATEWAY}/a2a/skills/juggle/")
    assert raised.value.status_code == 404
    card = await mesh.client.get("/a2a/skills/juggle/.well-known/agent-card.json")
    assert card.status_code == 404
    assert card.headers["content-type"] == "application/problem+json"
    rpc = {
        "jsonrpc": "2.0",
        "id": "x",
        "method": "SendMessage",
        "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
    }
    sent = await mesh.client.post("/a2a/skills/juggle/", json=rpc, headers=A2A)
    assert sent.status_code == 404
    assert sent.json()["id"] == "x"
    assert sent.json()["error"]["code"] == -31404


async def test_a_streamed_task_is_pinned_even_when_its_first_event_spans_chunks(
    mesh: Mesh,
) -> None:
    # The first event (the Task, with the message in its history) is far larger
    # than one read from the upstream socket.
    card = await card_at(mesh.client, f"{GATEWAY}/a2a/echo/")
    streaming = client_for(mesh.client, card, streaming=True)
    plain = client_for(mesh.client, card, streaming=False)
    big = "x" * 300_000
    for _ in range(4):
        events = [event async for event in streaming.send_message(message(big, "echo"))]
        assert events[0].HasField("task")
        got = await plain.get_task(GetTaskRequest(id=events[0].task.id))
        assert got.status.state == TaskState.TASK_STATE_COMPLETED
        assert artifact_text(got)[1:] == f": {big}"
    await streaming.close()
    await plain.close()


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_follow_up_message_reaches_the_replica_that_owns_its_task(
    mesh: Mesh, binding: str
) -> None:
    card = await card_at(mesh.client, f"{GATEWAY}/a2a/echo/")
    client = client_for(mesh.client, card, streaming=False, binding=binding)
    for i in range(4):
        task = await only_task(client, message(f"first {i}", "echo"))
        follow_up = message(f"more {i}", "echo")
        follow_up.message.task_id = task.id
        # The owner knows the task, and that it is over; another replica would not know it.
        with pytest.raises(UnsupportedOperationError, match="terminal state"):
            await only_task(client, follow_up)
    await client.close()
