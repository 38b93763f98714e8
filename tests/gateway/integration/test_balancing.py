"""Messages to ``/a2a/echo/`` spread over both replicas, with each balancing strategy."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

from tests.gateway.integration.mesh import A2A, running_mesh

pytestmark = pytest.mark.anyio

SENDS = 20


async def replica_answering(client: httpx.AsyncClient, text: str) -> str:
    message: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
    }
    message["metadata"] = {"skill": "echo"}
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    answer = await client.post("/a2a/echo/", json=rpc, headers=A2A)
    assert answer.status_code == 200, answer.text
    reply: str = answer.json()["result"]["task"]["artifacts"][0]["parts"][0]["text"]
    assert reply.endswith(f": {text}")
    return reply.split(":")[0]


async def test_round_robin_alternates_between_the_replicas() -> None:
    async with running_mesh(balancer="round_robin") as mesh:
        replicas = [await replica_answering(mesh.client, f"n{i}") for i in range(SENDS)]
    assert Counter(replicas) == {"A": SENDS // 2, "B": SENDS // 2}
    assert all(a != b for a, b in itertools.pairwise(replicas))


async def test_least_inflight_uses_both_replicas_one_at_a_time() -> None:
    async with running_mesh(balancer="least_inflight") as mesh:
        replicas = [await replica_answering(mesh.client, f"n{i}") for i in range(SENDS)]
    # Idle replicas tie: the pick is random (both used, but no fixed share).
    assert set(replicas) == {"A", "B"}


async def test_least_inflight_spreads_concurrent_messages_evenly() -> None:
    replicas: list[str] = []
    async with running_mesh(balancer="least_inflight") as mesh:

        async def one(i: int) -> None:
            replicas.append(await replica_answering(mesh.client, f"c{i}"))

        async with anyio.create_task_group() as tg:
            for i in range(SENDS):
                tg.start_soon(one, i)
    counts = Counter(replicas)
    assert sum(counts.values()) == SENDS
    # With two replicas the less loaded one always wins: the counts stay close.
    assert min(counts["A"], counts["B"]) >= SENDS // 4, counts
