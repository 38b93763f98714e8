"""Streaming progress and cancellation, over a real loopback socket where streaming matters."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from a2a.types import CancelTaskRequest, GetTaskRequest, StreamResponse, TaskState

from agents.runtime import build_agent_app, reply_from_parts
from tests.agents.runtime.support import (
    LOCAL_URL,
    Gate,
    a2a_client,
    final_task,
    in_process,
    make_agent,
    make_config,
    request,
    running_agent,
)

pytestmark = pytest.mark.anyio


def _status(event: StreamResponse) -> tuple[int, str]:
    update = event.status_update
    text = "".join(p.text for p in update.status.message.parts if p.HasField("text"))
    return update.status.state, text


async def test_streaming_shows_progress_before_the_result(tmp_path: Path) -> None:
    gate = Gate()
    async with (
        running_agent(make_agent(gate), tmp_path) as (url, _),
        httpx.AsyncClient(timeout=10) as http,
    ):
        client = await a2a_client(http, url, streaming=True)
        events: list[StreamResponse] = []
        async for event in client.send_message(request("go", skill="slow")):
            events.append(event)
            # Released only once the client has seen the progress: that is streaming.
            if event.HasField("status_update") and _status(event)[1] == "started":
                gate.release.set()
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[0] == "task"
    assert kinds[-1] == "status_update"
    statuses = [_status(e) for e in events if e.HasField("status_update")]
    working = TaskState.TASK_STATE_WORKING
    assert statuses[:3] == [(working, ""), (working, "started"), (working, "finishing")]
    assert statuses[-1][0] == TaskState.TASK_STATE_COMPLETED
    artifact = next(e.artifact_update.artifact for e in events if e.HasField("artifact_update"))
    assert reply_from_parts(artifact.parts).text == "slow done"


async def test_cancel_task_cancels_the_running_skill() -> None:
    gate = Gate()
    app = build_agent_app(make_agent(gate), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        submitted = await final_task(client, request("wait", skill="slow", return_immediately=True))
        assert submitted.status.state in (
            TaskState.TASK_STATE_SUBMITTED,
            TaskState.TASK_STATE_WORKING,
        )
        with anyio.fail_after(5):
            await gate.started.wait()
        cancelled = await client.cancel_task(CancelTaskRequest(id=submitted.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        assert gate.cancelled.is_set()  # the skill saw the cancellation
        fetched = await client.get_task(GetTaskRequest(id=submitted.id))
        assert fetched.status.state == TaskState.TASK_STATE_CANCELED
        assert not fetched.artifacts
        metrics = (await http.get("/metrics")).text
        assert (
            'meshgate_agent_skill_runs_total{agent="tester",outcome="canceled",skill="slow"} 1.0'
            in metrics
        )


async def test_cancelling_a_finished_task_is_refused() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("hi", skill="echo"))
        answer = await http.post(
            "/",
            json={"jsonrpc": "2.0", "id": 3, "method": "CancelTask", "params": {"id": task.id}},
            headers={"A2A-Version": "1.0"},
        )
        assert answer.json()["error"]["code"] == -32002  # TaskNotCancelableError


async def test_cancel_while_a_client_streams(tmp_path: Path) -> None:
    gate = Gate()
    async with (
        running_agent(make_agent(gate), tmp_path) as (url, _),
        httpx.AsyncClient(timeout=10) as http,
    ):
        streaming = await a2a_client(http, url, streaming=True)
        polling = await a2a_client(http, url)
        task_id = ""
        async for event in streaming.send_message(request("go", skill="slow")):
            if event.HasField("task"):
                task_id = event.task.id
            if event.HasField("status_update") and _status(event)[1] == "started":
                cancelled = await polling.cancel_task(CancelTaskRequest(id=task_id))
                assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        fetched = await polling.get_task(GetTaskRequest(id=task_id))
        assert fetched.status.state == TaskState.TASK_STATE_CANCELED


async def test_many_messages_at_once_on_sqlite(tmp_path: Path) -> None:
    app = build_agent_app(make_agent(), make_config(tmp_path))
    results: dict[int, str] = {}
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)

        async def one(i: int) -> None:
            task = await final_task(client, request(f"m{i}", skill="echo"))
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
            results[i] = reply_from_parts(task.artifacts[0].parts).text

        async with anyio.create_task_group() as tg:
            for i in range(25):
                tg.start_soon(one, i)
    assert results == {i: f"echo: m{i}" for i in range(25)}
