"""Durable tasks, self-registration, ops routes, the MCP face and graceful shutdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from a2a.types import GetTaskRequest, TaskState
from mcp import Client as McpClient

from agents.runtime import build_agent_app, card_to_json, reply_from_parts
from registry.models import CheckSpec
from tests.agents.runtime.support import (
    LOCAL_URL,
    Gate,
    a2a_client,
    final_task,
    hosted,
    in_process,
    make_agent,
    make_config,
    request,
    rpc,
    running_agent,
)
from tests.registry.server.conftest import running_registry
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


async def test_completed_tasks_survive_a_restart_on_the_same_file(tmp_path: Path) -> None:
    app = build_agent_app(make_agent(), make_config(tmp_path))
    async with in_process(app) as http:
        client = await a2a_client(http, LOCAL_URL)
        task = await final_task(client, request("keep me", skill="echo"))
    assert (tmp_path / "tester-1.db").exists()

    again = build_agent_app(make_agent(), make_config(tmp_path))
    async with in_process(again) as http:
        client = await a2a_client(http, LOCAL_URL)
        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert reply_from_parts(fetched.artifacts[0].parts).text == "echo: keep me"
        # A finished task cannot be continued: the SDK refuses it, with a protocol error.
        follow_up = request("more", skill="echo")
        follow_up.message.task_id = task.id
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": "m-2",
                    "taskId": task.id,
                    "role": "ROLE_USER",
                    "parts": [{"text": "more"}],
                }
            },
        }
        answer = (await rpc(http, body)).json()
        assert answer["error"]["code"] == -32004


async def test_ops_routes_and_skill_metrics() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=LOCAL_URL
    ) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 503  # lifespan not run yet
    async with in_process(app) as http:
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        client = await a2a_client(http, LOCAL_URL)
        await final_task(client, request("a", skill="echo"))
        await final_task(client, request("b", skill="fail"))
        await final_task(client, request("c", skill="crash"))
        await final_task(client, request("d", skill="what"))
        text = (await http.get("/metrics")).text
    runs = 'meshgate_agent_skill_runs_total{agent="tester",outcome="%s",skill="%s"} 1.0'
    for outcome, skill in [
        ("completed", "echo"),
        ("failed", "fail"),
        ("error", "crash"),
        ("failed", "unknown"),
    ]:
        assert runs % (outcome, skill) in text
    assert 'meshgate_agent_skill_seconds_count{agent="tester",skill="echo"} 1.0' in text
    assert 'meshgate_agent_skills_in_flight{agent="tester"} 0.0' in text
    assert 'meshgate_http_requests_total{method="POST",route="/",status="200"} 4.0' in text


async def test_the_agents_tools_are_served_at_mcp() -> None:
    async with (
        running_agent(make_agent()) as (url, _),
        McpClient(f"{url}/mcp", mode="2026-07-28", cache=None) as mcp,
    ):
        tools = await mcp.list_tools()
        assert [t.name for t in tools.tools] == ["word_count"]
        result = await mcp.call_tool("word_count", {"text": "one two three"})
        assert result.structured_content == {"result": 3}


async def test_registers_with_its_card_and_tools_passes_the_probe_and_deregisters() -> None:
    check = CheckSpec(ttl_seconds=5, interval_seconds=0.2, timeout_seconds=2)
    async with running_registry() as registry:

        async def instance() -> dict[str, Any] | None:
            found = await registry.get("/v1/services/tester/instances/tester-1")
            return found.json() if found.status_code == 200 else None

        async with running_agent(
            make_agent(), registry_url="http://registry", http=registry, check=check
        ) as (url, app):
            record = await eventually(
                instance,
                lambda r: r is not None and {c["status"] for c in r["checks"]} == {"passing"},
            )
            assert record is not None
            assert record["kind"] == "a2a-agent"
            assert record["health"] == "passing"
            assert {c["name"] for c in record["checks"]} == {"ttl", "probe"}
            assert record["url"].rstrip("/") == url
            assert record["card"] == card_to_json(app.state.card)
            assert record["card"]["supportedInterfaces"][0]["url"] == url + "/"
            assert [t["name"] for t in record["tools"]] == ["word_count"]
            assert record["meta"] == {"version": "1.2.3", "mcp_path": "/mcp"}
            found = await registry.get("/v1/agents", params={"skill": "slow"})
            assert [i["id"] for i in found.json()] == ["tester-1"]
        assert await instance() is None  # deregistered on the way out


async def test_shutdown_lets_in_flight_tasks_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    gate = Gate()
    async with running_registry() as registry:
        config = make_config(tmp_path, registry_url="http://registry")
        app = build_agent_app(make_agent(gate), config, http=registry)
        instance_path = "/v1/services/tester/instances/tester-1"
        async with hosted(app) as (http, stop):
            client = await a2a_client(http, LOCAL_URL)
            task = await final_task(client, request("wait", skill="slow", return_immediately=True))
            with anyio.fail_after(5):
                await gate.started.wait()
            stop.set()  # the lifespan exits: the agent drains
            await eventually(lambda: http.get("/readyz"), lambda r: r.status_code == 503)
            # Out of rotation at once (critical), still registered while it drains.
            drained = await eventually(
                lambda: registry.get(instance_path), lambda r: r.json()["health"] == "critical"
            )
            assert drained.json()["checks"][0]["output"] == "shutting down"
            late = {"messageId": "late", "role": "ROLE_USER", "parts": [{"text": "x"}]}
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": late}}
            refused = (await rpc(http, body)).json()
            assert refused["error"]["code"] == -32004
            assert "shutting down" in refused["error"]["message"]
            still = await client.get_task(GetTaskRequest(id=task.id))  # reads still work
            assert still.status.state == TaskState.TASK_STATE_WORKING
            gate.release.set()
        assert (await registry.get(instance_path)).status_code == 404
    assert not gate.cancelled.is_set()

    async with in_process(build_agent_app(make_agent(), make_config(tmp_path))) as http:
        fetched = await (await a2a_client(http, LOCAL_URL)).get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert reply_from_parts(fetched.artifacts[0].parts).text == "slow done"


async def test_shutdown_cancels_what_outlasts_the_grace_period_then_deregisters(
    tmp_path: Path,
) -> None:
    gate = Gate()
    async with running_registry() as registry:
        config = make_config(tmp_path, grace=0.2, registry_url="http://registry")
        app = build_agent_app(make_agent(gate), config, http=registry)
        async with in_process(app) as http:
            client = await a2a_client(http, LOCAL_URL)
            task = await final_task(client, request("never", skill="slow", return_immediately=True))
            with anyio.fail_after(5):
                await gate.started.wait()
            await eventually(
                lambda: registry.get("/v1/services/tester/instances/tester-1"),
                lambda r: r.status_code == 200,
            )
        # The lifespan has exited: the skill was cancelled, the outcome stored, the
        # instance deregistered.
        assert gate.cancelled.is_set()
        gone = await registry.get("/v1/services/tester/instances/tester-1")
        assert gone.status_code == 404

    async with in_process(build_agent_app(make_agent(), make_config(tmp_path))) as http:
        fetched = await (await a2a_client(http, LOCAL_URL)).get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_CANCELED
