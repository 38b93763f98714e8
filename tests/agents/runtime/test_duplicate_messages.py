"""A client that sends the same A2A ``messageId`` again (a retry) gets the first task back.

A retry after a lost answer must not run the skill a second time: the runtime
remembers recent message ids and answers a repeat with the task the first
message made, waiting for it when it is still running.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from agents.runtime import build_agent_app
from tests.agents.runtime.support import Gate, in_process, make_agent, make_config
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

RUNS = "meshgate_agent_skill_runs_total"


def _send(message_id: str, skill: str, *, method: str = "SendMessage") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": {
            "message": {
                "messageId": message_id,
                "role": "ROLE_USER",
                "parts": [{"text": "hello"}],
            },
            "metadata": {"skill": skill},
        },
    }


async def _runs(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(RUNS + "{")
    )


def _waiting(app: Starlette) -> Callable[[], Awaitable[int]]:
    async def probe() -> int:
        return int(app.state.recent_messages.waiting)

    return probe


async def _task(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/", json=body, headers={"A2A-Version": "1.0"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "result" in answer, answer
    task: dict[str, Any] = answer["result"]["task"]
    return task


async def test_a_repeated_message_id_returns_the_first_task_without_running_again() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        message_id = str(uuid.uuid4())
        first = await _task(http, _send(message_id, "echo"))
        again = await _task(http, _send(message_id, "echo"))
        assert again["id"] == first["id"]
        assert again["status"]["state"] == "TASK_STATE_COMPLETED"
        assert await _runs(http) == 1
        other = await _task(http, _send(str(uuid.uuid4()), "echo"))
        assert other["id"] != first["id"]
        assert await _runs(http) == 2


async def test_a_repeat_sent_while_the_first_runs_waits_for_it() -> None:
    gate = Gate()
    app = build_agent_app(make_agent(gate), make_config())
    async with in_process(app) as http:
        message_id = str(uuid.uuid4())
        tasks: list[dict[str, Any]] = []

        async def send() -> None:
            tasks.append(await _task(http, _send(message_id, "slow")))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            with anyio.fail_after(5):
                await gate.started.wait()
            tg.start_soon(send)
            await eventually(_waiting(app), lambda n: n >= 1)
            gate.release.set()
        assert [t["id"] for t in tasks] == [tasks[0]["id"]] * 2
        assert {t["status"]["state"] for t in tasks} == {"TASK_STATE_COMPLETED"}
        assert await _runs(http) == 1


async def test_a_repeated_message_id_on_a_stream_yields_the_first_task() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        message_id = str(uuid.uuid4())
        first = await _task(http, _send(message_id, "echo"))
        response = await http.post(
            "/",
            json=_send(message_id, "echo", method="SendStreamingMessage"),
            headers={"A2A-Version": "1.0"},
        )
        assert response.status_code == 200
        assert first["id"] in response.text
        assert await _runs(http) == 1
