"""The MCP Inspector CLI, a client nobody here wrote, through the gateway's /mcp."""

from __future__ import annotations

import pytest

from agents.researcher import agent as researcher
from agents.tools import MeshTools
from tests.agents.mesh import running_agent
from tests.gateway.mcp.mesh import CHECK, running_mcp_mesh
from tests.support.external import inspect_mcp
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


async def test_the_inspector_sees_two_tool_servers_and_two_agents_and_calls_them() -> None:
    async with running_mcp_mesh() as mesh:
        tools = MeshTools(mesh.registry, http=mesh.http, gateway_url=None)
        async with running_agent(
            researcher, tools=tools, registry_url=mesh.registry_url, check=CHECK
        ):
            url = mesh.urls["gateway"] + "/mcp"
            wanted = {
                "calc__evaluate",
                "knowledge__search",
                "calculator__calculate",
                "calculator__extract_expression",
                "researcher__research",
                "researcher__search_terms",
            }

            async def names() -> set[str]:
                listed = await inspect_mcp(url, "--method", "tools/list")
                return {t["name"] for t in listed["tools"]}

            await eventually(names, lambda found: wanted <= found, within=20, interval=0.2)

            tool = await inspect_mcp(
                url, "--method", "tools/call", "--tool-name", "calc__evaluate",
                "--tool-arg", "expression=17*23",
            )  # fmt: skip
            assert tool["isError"] is False
            assert tool["structuredContent"]["value"] == 391

            agent_tool = await inspect_mcp(
                url, "--method", "tools/call", "--tool-name", "calculator__extract_expression",
                "--tool-arg", "text=what is 6 times 7",
            )  # fmt: skip
            assert agent_tool["structuredContent"]["expression"] == "6 * 7"

            skill = await inspect_mcp(
                url, "--method", "tools/call", "--tool-name", "researcher__research",
                "--tool-arg", "text=What does the with statement do?",
            )  # fmt: skip
            assert skill["isError"] is False
            assert "with" in skill["content"][0]["text"]
