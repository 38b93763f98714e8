"""The reference agents' own MCP tools, at each agent's ``/mcp``.

Every call here is a self-contained 2026-07-28 POST to the real runtime's app
(in-process), one goes through the SDK's client on a loopback socket, and one
through the MCP Inspector's CLI, a client nobody here wrote.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import Client as McpClient

from agents.calculator import agent as calculator
from agents.planner import agent as planner
from agents.researcher import agent as researcher
from agents.runtime import MEMORY_STORE, AgentConfig, build_agent_app
from agents.sdk import Agent
from agents.summarizer import agent as summarizer
from mcp_servers.hosting import HostingConfig
from registry.models import CheckSpec
from tests.agents.mesh import running_agent
from tests.agents.runtime.support import LOCAL_URL, in_process
from tests.mcp_servers.support import call, modern
from tests.registry.server.conftest import running_registry
from tests.support.external import inspect_mcp

pytestmark = pytest.mark.anyio

AGENTS = {a.name: a for a in (researcher, summarizer, calculator, planner)}
TOOLS = {
    "researcher": "search_terms",
    "summarizer": "summarize_text",
    "calculator": "extract_expression",
    "planner": "plan_question",
}
PROSE = (
    "The with statement wraps a block in the methods of a context manager. "
    "A context manager sets up a runtime context and tears it down again. "
    "Files are the usual example: the file is closed when the block ends. "
    "The weather plays no part in any of this, though it was sunny today."
)


def _config(agent: Agent, registry_url: str | None = None) -> AgentConfig:
    hosting = HostingConfig(
        service=agent.name,
        instance=f"{agent.name}-1",
        public_url=LOCAL_URL,
        registry_url=registry_url,
        check=CheckSpec(ttl_seconds=5, interval_seconds=0),
    )
    return AgentConfig(hosting=hosting, task_store=MEMORY_STORE)


@contextlib.asynccontextmanager
async def agent_mcp(name: str) -> AsyncIterator[httpx.AsyncClient]:
    """The agent's app, in-process, with a client for its ``/mcp``."""
    async with in_process(build_agent_app(AGENTS[name], _config(AGENTS[name]))) as http:
        yield http


@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_each_agent_lists_its_read_only_tool_with_an_output_schema(name: str) -> None:
    async with agent_mcp(name) as http:
        response = await modern(http, "tools/list")
    assert response.status_code == 200, response.text
    tools = response.json()["result"]["tools"]
    assert [t["name"] for t in tools] == [TOOLS[name]]
    tool = tools[0]
    assert tool["annotations"] == {
        "readOnlyHint": True,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert tool["outputSchema"]["type"] == "object"
    assert tool["title"]
    assert tool["description"]


@pytest.mark.parametrize(
    ("name", "arguments", "structured"),
    [
        (
            "researcher",
            {"question": "What does the with statement do?"},
            {"query": "with statement"},
        ),
        ("researcher", {"question": "Explain the for statement"}, {"query": "for statement"}),
        (
            "summarizer",
            {"text": PROSE, "sentences": 2},
            {
                "summary": (
                    "The with statement wraps a block in the methods of a context manager. "
                    "A context manager sets up a runtime context and tears it down again."
                ),
                "sentences": [
                    "The with statement wraps a block in the methods of a context manager.",
                    "A context manager sets up a runtime context and tears it down again.",
                ],
                "kept": [0, 1],
                "of": 4,
            },
        ),
        (
            "summarizer",
            {"text": "Just one sentence."},  # sentences defaults to 3
            {
                "summary": "Just one sentence.",
                "sentences": ["Just one sentence."],
                "kept": [0],
                "of": 1,
            },
        ),
        (
            "calculator",
            {"text": "What is 17 times 23?"},
            {"expression": "17 * 23", "arithmetic": True},
        ),
        ("calculator", {"text": "what is 5?"}, {"expression": "5", "arithmetic": False}),
        (
            "calculator",
            {"text": "What does the with statement do?"},
            {"expression": None, "arithmetic": False},
        ),
        (
            "planner",
            {"question": "What does the with statement do, and what is 17*23?"},
            {
                "steps": [
                    {"question": "What does the with statement do", "skill": "research"},
                    {"question": "what is 17*23?", "skill": "calculate"},
                ]
            },
        ),
        (
            "planner",
            {"question": "Summarize: A b c. D e f."},
            {"steps": [{"question": "Summarize: A b c. D e f.", "skill": "summarize"}]},
        ),
        ("planner", {"question": "  "}, {"steps": []}),
    ],
)
async def test_each_tool_answers_structured_content(
    name: str, arguments: dict[str, Any], structured: dict[str, Any]
) -> None:
    async with agent_mcp(name) as http:
        result = await call(http, TOOLS[name], **arguments)
    assert result["isError"] is False, result
    assert result["structuredContent"] == structured
    # The text content is the same object, for clients that read only text.
    assert json.loads(result["content"][0]["text"]) == structured


@pytest.mark.parametrize(
    ("name", "arguments", "said"),
    [
        ("researcher", {"question": "   "}, "ask a question about Python"),
        ("researcher", {"question": "x" * 4_001}, "question"),
        ("summarizer", {"text": " \n "}, "there is no text to summarise"),
        ("summarizer", {"text": PROSE, "sentences": 0}, "sentences"),
        ("summarizer", {"text": PROSE, "sentences": 21}, "sentences"),
        ("calculator", {"text": ""}, "text"),
        ("planner", {}, "question"),
    ],
)
async def test_bad_arguments_are_error_results(
    name: str, arguments: dict[str, Any], said: str
) -> None:
    async with agent_mcp(name) as http:
        result = await call(http, TOOLS[name], **arguments)
    assert result["isError"] is True
    assert said in result["content"][0]["text"]
    assert "structuredContent" not in result


async def test_the_registration_carries_the_tools_as_listed() -> None:
    async with running_registry() as registry:
        for agent in AGENTS.values():
            app = build_agent_app(agent, _config(agent, "http://registry"), http=registry)
            async with in_process(app) as http:
                record = await app.state.registration.wait_registered()
                listed = (await modern(http, "tools/list")).json()["result"]["tools"]
            assert record.tools == listed, agent.name
            assert record.tools[0]["outputSchema"]["type"] == "object"
            assert record.tools[0]["annotations"]["readOnlyHint"] is True


async def test_the_sdk_client_calls_a_tool_over_a_socket() -> None:
    async with (
        running_agent(calculator) as url,
        McpClient(f"{url}/mcp", mode="2026-07-28", cache=None) as mcp,
    ):
        tools = await mcp.list_tools()
        assert [t.name for t in tools.tools] == ["extract_expression"]
        assert tools.tools[0].output_schema is not None
        result = await mcp.call_tool("extract_expression", {"text": "2 to the power of 10"})
    assert result.is_error is False
    assert result.structured_content == {"expression": "2 ** 10", "arithmetic": True}


async def test_the_inspector_lists_and_calls_an_agents_tool() -> None:
    async with running_agent(planner) as url:
        listed = await inspect_mcp(f"{url}/mcp", "--method", "tools/list")
        assert [t["name"] for t in listed["tools"]] == ["plan_question"]
        tool = listed["tools"][0]
        assert tool["annotations"]["readOnlyHint"] is True
        assert tool["outputSchema"]["properties"]["steps"]["type"] == "array"

        called = await inspect_mcp(
            f"{url}/mcp",
            "--method",
            "tools/call",
            "--tool-name",
            "plan_question",
            "--tool-arg",
            "question=What is a lambda? What is 2**10?",
        )
    assert called["isError"] is False
    assert called["structuredContent"] == {
        "steps": [
            {"question": "What is a lambda?", "skill": "research"},
            {"question": "What is 2**10?", "skill": "calculate"},
        ]
    }
