"""Messages to skills through the a2a-sdk client, in-process: routing, replies, failures."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from a2a.types import GetTaskRequest, TaskState
from opentelemetry import trace

from agents.runtime import build_agent_app, reply_from_parts
from agents.sdk import Agent, Citation, IncomingMessage, Reply, SkillContext, ToolResult
from tests.agents.runtime.support import (
    LOCAL_URL,
    SECRET,
    a2a_client,
    final_task,
    in_process,
    make_agent,
    make_config,
    request,
    status_text,
)

pytestmark = pytest.mark.anyio


async def test_send_message_completes_with_the_reply_as_an_artifact() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("hello", skill="echo"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert [a.name for a in task.artifacts] == ["reply"]
        reply = reply_from_parts(task.artifacts[0].parts)
        assert reply.text == "echo: hello"
        assert reply.data is not None
        assert reply.data["length"] == 5
        assert reply.data["task"] == task.id
        assert reply.citations == (Citation("test://echo", "Echo", "tester"),)
        assert task.history[0].parts[0].text == "hello"  # the user's message is kept

        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert reply_from_parts(fetched.artifacts[0].parts) == reply


async def test_the_skill_can_be_named_in_a_data_part_or_the_request_metadata() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("hi", data={"skill": "echo", "x": 1}))
        reply = reply_from_parts(task.artifacts[0].parts)
        assert reply.text == "echo: hi"
        assert reply.data is not None
        assert reply.data["data"] == [{"skill": "echo", "x": 1.0}]

        sent = request("there")
        sent.metadata.update({"skill": "echo"})
        task = await final_task(client, sent)
        assert reply_from_parts(task.artifacts[0].parts).text == "echo: there"


async def test_a_single_skill_agent_needs_no_skill_name() -> None:
    agent = make_agent()
    agent.skills = {"echo": agent.skills["echo"]}
    app = build_agent_app(agent, make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("solo"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert reply_from_parts(task.artifacts[0].parts).text == "echo: solo"


@pytest.mark.parametrize(
    ("skill", "expected"),
    [
        (None, "has several skills; name one in the message metadata 'skill'"),
        ("nope", "has no skill 'nope'"),
    ],
)
async def test_an_unnamed_or_unknown_skill_fails_the_task_listing_the_skills(
    skill: str | None, expected: str
) -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("hello", skill=skill))
        assert task.status.state == TaskState.TASK_STATE_FAILED
        text = status_text(task)
        assert expected in text
        assert "echo, slow, fail, crash, ask" in text
        assert dict(task.status.message.metadata) == {"error": "unknown-skill"}


async def test_a_skill_error_fails_the_task_with_its_message() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("x", skill="fail"))
        assert task.status.state == TaskState.TASK_STATE_FAILED
        assert status_text(task) == "cannot do that here"
        assert not task.artifacts


async def test_an_unexpected_exception_fails_the_task_without_leaking_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("x", skill="crash"))
        assert task.status.state == TaskState.TASK_STATE_FAILED
        assert status_text(task) == "skill 'crash' failed with an internal error"
        fetched = await http.post(
            "/",
            json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task.id}},
            headers={"A2A-Version": "1.0"},
        )
        assert SECRET not in fetched.text
        assert "Traceback" not in fetched.text
    # The traceback is logged, for the operator.
    assert any(SECRET in (r.exc_text or "") for r in caplog.records if r.exc_info)


async def test_without_clients_tools_and_peers_fail_the_skill_clearly() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("1+1", skill="ask"))
        assert task.status.state == TaskState.TASK_STATE_FAILED
        assert status_text(task).startswith("no registry configured")


class FakePeers:
    """A Delegator that answers from memory (the real one is engineer C's)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None, str]] = []

    async def ask(
        self, text: str, *, skill: str | None = None, agent: str | None = None, context_id: str = ""
    ) -> Reply:
        self.asked.append((text, skill, context_id))
        return Reply(text=f"peer says {text}")


class FakeTools:
    async def call(self, service: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        return ToolResult(text=f"{service}.{tool}({arguments['expression']})")


async def test_injected_tools_and_peers_reach_the_skill() -> None:
    peers = FakePeers()
    app = build_agent_app(make_agent(), make_config(), tools=FakeTools(), peers=peers)
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("2*3", skill="ask"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        reply = reply_from_parts(task.artifacts[0].parts)
        assert reply.text == "peer says 2*3 / calc.evaluate(2*3)"
        assert reply.data is None
        assert reply.citations == ()
        assert peers.asked == [("2*3", "echo", task.context_id)]
        assert len(task.artifacts[0].parts) == 1  # text only: no data, no citations


async def test_the_http_json_binding_serves_the_same_tasks() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        body = {
            "message": {
                "messageId": "m-1",
                "role": "ROLE_USER",
                "parts": [{"text": "rest"}],
                "metadata": {"skill": "echo"},
            }
        }
        sent = await http.post("/message:send", json=body, headers={"A2A-Version": "1.0"})
        assert sent.status_code == 200, sent.text
        task = sent.json()["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        got = await http.get(f"/tasks/{task['id']}", headers={"A2A-Version": "1.0"})
        assert got.status_code == 200
        assert got.json()["artifacts"][0]["parts"][0]["text"] == "echo: rest"


async def test_a_reply_that_is_not_a_reply_or_not_json_is_an_internal_error() -> None:
    agent = Agent("odd", "Answers what it should not.")

    @agent.skill()
    async def number(message: IncomingMessage, ctx: SkillContext) -> Any:
        return 42

    @agent.skill()
    async def opaque(message: IncomingMessage, ctx: SkillContext) -> Reply:
        return Reply(text="x", data={"when": object()})

    app = build_agent_app(agent, make_config())
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        for skill in ("number", "opaque"):
            task = await final_task(client, request("x", skill=skill))
            assert task.status.state == TaskState.TASK_STATE_FAILED
            assert status_text(task) == f"skill {skill!r} failed with an internal error"


async def test_a_task_store_named_by_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}"
    app = build_agent_app(make_agent(), make_config(task_store=url))
    async with in_process(app) as http:
        task = await final_task(await a2a_client(http, LOCAL_URL), request("x", skill="echo"))
    async with in_process(build_agent_app(make_agent(), make_config(task_store=url))) as http:
        fetched = await (await a2a_client(http, LOCAL_URL)).get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"grace": -1}, "grace_seconds"), ({"max_body_bytes": 10}, "max_body_bytes")],
)
def test_config_refuses_nonsense(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_config(**changes)


async def test_a_skill_runs_in_the_callers_trace() -> None:
    seen: list[int] = []
    agent = Agent("traced", "Looks at its trace.")

    @agent.skill()
    async def look(message: IncomingMessage, ctx: SkillContext) -> str:
        seen.append(trace.get_current_span().get_span_context().trace_id)
        return "ok"

    trace_id = "0af7651916cd43dd8448eb211c80319c"
    message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "x"}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    headers = {"A2A-Version": "1.0", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    async with in_process(build_agent_app(agent, make_config())) as http:
        answer = await http.post("/", json=body, headers=headers)
        assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        # A new message id: a repeated one is a retry, answered without a run.
        again = {**body, "id": 2, "params": {"message": {**message, "messageId": "m-2"}}}
        await http.post("/", json=again, headers={"A2A-Version": "1.0"})
    assert seen[0] == int(trace_id, 16)
    # No caller trace: not the earlier caller's (a new root, or none without an SDK;
    # which one depends on whether an earlier test configured a tracer provider).
    assert seen[1] != int(trace_id, 16)
