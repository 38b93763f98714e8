"""``meshgate agent``: resolving agents, flags, clients, and a real process through kill -9."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from a2a.types import GetTaskRequest, TaskState
from anyio.abc import Process
from click.testing import CliRunner

from agents.delegation import PeerClient
from agents.runtime import MEMORY_STORE, AgentConfig, build_agent_card, reply_from_parts
from agents.sdk import Agent
from agents.tools import MeshTools
from mcp_servers.hosting import HostingConfig
from meshgate.commands.agent import (
    REFERENCE_AGENTS,
    agent,
    default_clients,
    default_instance,
    load_agent,
)
from tests.agents.runtime.support import a2a_client, final_task, make_agent, request
from tests.support.external import ROOT
from tests.support.live import free_port
from tests.support.polling import eventually

SPEC = "tests.agents.runtime.support:make_agent"
TEST_AGENT = make_agent()


def test_load_agent_takes_an_agent_or_a_factory() -> None:
    assert load_agent(SPEC).name == "tester"  # a zero-argument factory
    assert load_agent("tests.agents.runtime.test_cli:TEST_AGENT") is TEST_AGENT


@pytest.mark.parametrize("name", REFERENCE_AGENTS)
def test_a_reference_name_is_agents_name_agent(name: str) -> None:
    loaded = load_agent(name)
    assert isinstance(loaded, Agent)
    assert loaded.name == name
    build_agent_card(loaded, "http://127.0.0.1:1")  # it can be served


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "cannot import 'agents.nosuch'"),
        ("nosuch", "reference agents: researcher, summarizer, calculator, planner"),
        ("tests.nosuch:agent", "cannot import 'tests.nosuch'"),
        ("tests.agents.runtime.support:nothing", "has no attribute 'nothing'"),
        ("tests.agents.runtime.support:LOCAL_URL", "is not an Agent"),
        (":agent", "neither an agent name nor module:attr"),
    ],
)
def test_load_agent_explains_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_agent(spec)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "cannot import"),
        ([SPEC, "--port", "70000"], "--port"),
        ([SPEC, "--host", "0.0.0.0", "--port", "8000"], "set public_url"),
        ([SPEC, "--instance", "Not_A_Label"], "is not a DNS label"),
        ([SPEC, "--max-body", "10"], "--max-body"),
    ],
)
def test_bad_flags_fail_with_a_clear_message(args: list[str], message: str) -> None:
    result = CliRunner().invoke(agent, args)
    assert result.exit_code == 2
    assert message in result.output


def test_the_default_instance_is_stable_per_host_and_port() -> None:
    first = default_instance("researcher", 8101)
    assert first == default_instance("researcher", 8101)
    assert first != default_instance("researcher", 8102)
    assert first.startswith("researcher-")
    assert len(first) == len("researcher-") + 6


@pytest.mark.anyio
async def test_default_clients_need_a_registry() -> None:
    async with httpx.AsyncClient() as http:
        bare = AgentConfig(HostingConfig("tester", port=1), task_store=MEMORY_STORE)
        assert default_clients(bare, http) == (None, None)
        hosting = HostingConfig("tester", port=1, registry_url="http://127.0.0.1:9")
        tools, peers = default_clients(AgentConfig(hosting, gateway_url="http://gw"), http)
        assert isinstance(tools, MeshTools)
        assert isinstance(peers, PeerClient)


# -- a real process ------------------------------------------------------------


@asynccontextmanager
async def agent_process(port: int, data: Path) -> AsyncIterator[Process]:
    """``meshgate agent`` (the click command on its own) serving the test agent."""
    code = "from meshgate.commands.agent import agent; agent()"
    command = [sys.executable, "-c", code, SPEC, "--port", str(port), "--data", str(data)]
    command += ["--instance", "tester-1", "--grace", "2"]
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false"}
    async with await anyio.open_process(command, cwd=ROOT, env=env, stdout=None) as proc:
        try:
            async with httpx.AsyncClient() as http:

                async def ready() -> int:
                    if proc.returncode is not None:
                        raise AssertionError(f"the agent exited with {proc.returncode}")
                    try:
                        return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code
                    except httpx.TransportError:
                        return 0

                await eventually(ready, lambda status: status == 200, within=20)
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()  # by the PID we started
            await proc.wait()


@pytest.mark.e2e
@pytest.mark.anyio
async def test_a_killed_agent_returns_its_completed_tasks_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with agent_process(port, tmp_path) as proc, httpx.AsyncClient(timeout=10) as http:
        client = await a2a_client(http, url)
        task = await final_task(client, request("durable", skill="echo"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    assert (tmp_path / "tester-1.db").exists()

    async with agent_process(port, tmp_path) as proc, httpx.AsyncClient(timeout=10) as http:
        client = await a2a_client(http, url)
        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert reply_from_parts(fetched.artifacts[0].parts).text == "echo: durable"
        proc.terminate()  # SIGTERM: a graceful stop ends with status 0
        with anyio.fail_after(15):
            assert await proc.wait() == 0
