"""A client's retry of a message (same ``messageId``) reaches the replica that has it.

Round robin would send the retry to the other replica, which has never seen the
message and would run it again; the gateway sends it where the first went, and
that agent answers the task it already made.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.gateway.integration.mesh import A2A, Mesh

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
