"""A client that sends the same A2A ``messageId`` again (a retry) gets the first task back.

A retry after a lost answer must not run the skill a second time: the runtime
remembers recent message ids and answers a repeat with the task the first
message made, waiting for it when it is still running. A restart forgets none
of them: the store says which message made which task, and a task the killed
process left running is failed, not left "working" forever.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
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


async def test_a_restarted_agent_answers_a_repeat_from_its_store(tmp_path: Path) -> None:
    message_id = str(uuid.uuid4())
    async with in_process(build_agent_app(make_agent(), make_config(tmp_path))) as http:
        first = await _task(http, _send(message_id, "echo"))
    async with in_process(build_agent_app(make_agent(), make_config(tmp_path))) as http:
        again = await _task(http, _send(message_id, "echo"))
        assert again["id"] == first["id"]
        assert again["status"]["state"] == "TASK_STATE_COMPLETED"
        assert await _runs(http) == 0


def _stored_states(store: Path) -> Callable[[], Awaitable[str]]:
    async def probe() -> str:
        with contextlib.closing(sqlite3.connect(store)) as db:
            return str(db.execute("SELECT status FROM tasks").fetchall())

    return probe


def _snapshot(store: Path, to: Path) -> None:
    """The store as a process killed now leaves it (a consistent copy, WAL included)."""
    to.parent.mkdir(parents=True)
    with (
        contextlib.closing(sqlite3.connect(store)) as src,
        contextlib.closing(sqlite3.connect(to)) as dst,
    ):
        src.backup(dst)


async def test_a_task_its_killed_process_left_running_fails_on_restart(tmp_path: Path) -> None:
    gate = Gate()
    config = make_config(tmp_path / "live")
    message_id = str(uuid.uuid4())
    live = build_agent_app(make_agent(gate), config)
    async with in_process(live) as http, anyio.create_task_group() as tg:
        tg.start_soon(_task, http, _send(message_id, "slow"))
        with anyio.fail_after(5):
            await gate.started.wait()
        await eventually(_stored_states(config.task_db_path), lambda s: "WORKING" in s)
        _snapshot(config.task_db_path, tmp_path / "killed" / config.task_db_path.name)
        gate.release.set()

    restarted = make_config(tmp_path / "killed")
    async with in_process(build_agent_app(make_agent(gate), restarted)) as http:
        again = await _task(http, _send(message_id, "slow"))
        assert again["status"]["state"] == "TASK_STATE_FAILED"
        assert again["status"]["message"]["metadata"] == {"error": "agent-restarted"}
        assert "new message" in again["status"]["message"]["parts"][0]["text"]
        assert await _runs(http) == 0
        polled = await http.post(
            "/",
            json={"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": again["id"]}},
            headers={"A2A-Version": "1.0"},
        )
        assert polled.json()["result"]["status"]["state"] == "TASK_STATE_FAILED"
