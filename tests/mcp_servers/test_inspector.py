"""A client nobody here wrote: the MCP Inspector CLI against a live tool server."""

from __future__ import annotations

import pytest

from tests.mcp_servers.support import running_tool_server
from tests.support.external import inspect_mcp

pytestmark = pytest.mark.anyio


async def test_the_inspector_lists_and_calls_tools() -> None:
    async with running_tool_server("calc") as (url, _):
        listed = await inspect_mcp(f"{url}/mcp", "--method", "tools/list")
        tools = {t["name"]: t for t in listed["tools"]}
        assert set(tools) == {"evaluate", "statistics"}
        assert tools["evaluate"]["annotations"]["readOnlyHint"] is True
        assert "outputSchema" in tools["statistics"]

        called = await inspect_mcp(
            f"{url}/mcp",
            "--method",
            "tools/call",
            "--tool-name",
            "evaluate",
            "--tool-arg",
            "expression=17*23",
        )
        assert called["isError"] is False
        assert called["structuredContent"] == {"expression": "17*23", "value": 391, "text": "391"}
