"""A client's retry of a message (same ``messageId``) reaches the replica that has it.

Round robin would send the retry to the other replica, which has never seen the
message and would run it again; the gateway sends it where the first went, and
that agent answers the task it already made. While that instance cannot take
the retry (critical, or gone after reading the first send), the retry waits
(503, Retry-After) instead of running elsewhere.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from registry.models import Health
from tests.agents.mesh import register
from tests.gateway.integration.mesh import (
    A2A,
    REPLICAS,
    Mesh,
    echo_registration,
    routes_ready,
    running_mesh,
)
from tests.gateway.proxy.servers import Peer, raw_server

pytestmark = pytest.mark.anyio


def send(message_id: str, text: str) -> dict[str, Any]:
    message = {
        "messageId": message_id,
        "role": "ROLE_USER",
        "parts": [{"text": text}],
        "metadata": {"skill": "echo"},
    }
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}


async def task_of(mesh: Mesh, message_id: str, text: str) -> dict[str, Any]:
    answer = await mesh.client.post("/a2a/echo/", json=send(message_id, text), headers=A2A)
    assert answer.status_code == 200, answer.text
    task: dict[str, Any] = answer.json()["result"]["task"]
    return task


def replica_of(task: dict[str, Any]) -> str:
    text: str = task["artifacts"][0]["parts"][0]["text"]
    return text.split(":")[0]


async def test_a_retried_message_is_answered_with_its_first_task(mesh: Mesh) -> None:
    first_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = await task_of(mesh, first_id, "hello")
    other = await task_of(mesh, other_id, "hello")  # round robin: the other replica
    assert replica_of(first) != replica_of(other)

    # Retried in the other order: round robin alone would swap the replicas.
    again = await task_of(mesh, other_id, "hello")
    assert again["id"] == other["id"]
    assert replica_of(again) == replica_of(other)
    retried = await task_of(mesh, first_id, "hello")
    assert retried["id"] == first["id"]
    assert replica_of(retried) == replica_of(first)


async def set_health(mesh: Mesh, instance: str, health: Health) -> None:
    await mesh.registry.heartbeat("echo", instance, health)


async def test_a_retry_waits_for_its_instance_rather_than_running_on_another() -> None:
    async with running_mesh(balancer="round_robin") as mesh:
        message_id = str(uuid.uuid4())
        first = await task_of(mesh, message_id, "hello")
        owner = replica_of(first).lower()
        await set_health(mesh, owner, Health.CRITICAL)
        await routes_ready(mesh.client, 1)

        retry = await mesh.client.post("/a2a/echo/", json=send(message_id, "hello"), headers=A2A)
        assert retry.status_code == 503
        assert retry.headers["retry-after"] == "1"
        assert "received this message earlier" in retry.json()["error"]["message"]
        # The other replica still takes new messages.
        fresh = await task_of(mesh, str(uuid.uuid4()), "hello")
        assert replica_of(fresh).lower() != owner

        await set_health(mesh, owner, Health.PASSING)
        await routes_ready(mesh.client, 2)
        again = await task_of(mesh, message_id, "hello")
        assert again["id"] == first["id"]


async def drop_after_reading(peer: Peer) -> None:
    """An agent killed after it took the request: read it all, close, never answer."""
    await peer.read_request()


async def test_a_message_whose_instance_died_before_answering_is_not_run_on_another() -> None:
    mesh_running = running_mesh(balancer="round_robin")
    async with mesh_running as mesh, raw_server(drop_after_reading) as dying:
        url = f"http://127.0.0.1:{dying.port}"
        await register(mesh.registry, "echo", "c", echo_registration(url))
        for replica in REPLICAS:
            await set_health(mesh, replica.lower(), Health.CRITICAL)
        await routes_ready(mesh.client, 1)
        message_id = str(uuid.uuid4())

        lost = await mesh.client.post("/a2a/echo/", json=send(message_id, "hi"), headers=A2A)
        assert lost.status_code == 502
        assert "failed before answering" in lost.json()["error"]["message"]
        assert dying.connections == 1

        for replica in REPLICAS:
            await set_health(mesh, replica.lower(), Health.PASSING)
        await routes_ready(mesh.client, 3)
        await dying.stop()  # the instance is gone: connections to it are refused
        for _ in range(4):  # round robin would reach both live replicas
            retry = await mesh.client.post("/a2a/echo/", json=send(message_id, "hi"), headers=A2A)
            assert retry.status_code == 503, retry.text
            assert retry.headers["retry-after"] == "1"

        # Deregistered, its tasks go with it: only then may the message run anew.
        await mesh.registry.deregister("echo", "c")
        await routes_ready(mesh.client, 2)
        ran = await task_of(mesh, message_id, "hi")
        assert replica_of(ran) in REPLICAS


async def test_the_http_json_binding_pins_a_message_to_its_instance_too() -> None:
    async with running_mesh(balancer="round_robin") as mesh:
        message_id = str(uuid.uuid4())
        body = send(message_id, "hello")["params"]
        first = await mesh.client.post("/a2a/echo/message:send", json=body, headers=A2A)
        assert first.status_code == 200, first.text
        task = first.json()["task"]
        for _ in range(3):
            again = await mesh.client.post("/a2a/echo/message:send", json=body, headers=A2A)
            assert again.status_code == 200, again.text
            assert again.json()["task"]["id"] == task["id"]
