"""A client nobody here wrote: the MCP Inspector CLI against a live tool server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import pytest

from tests.mcp_servers.support import running_tool_server
from tests.support.external import mcp_inspector_cli

pytestmark = pytest.mark.anyio


async def _inspect(url: str, *args: str) -> Any:
    # A subprocess of this event loop: the server keeps serving while it runs.
    process = await asyncio.create_subprocess_exec(
        *mcp_inspector_cli(),
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        with anyio.fail_after(60):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_the_inspector_lists_and_calls_tools() -> None:
    async with running_tool_server("calc") as (url, _):
        listed = await _inspect(f"{url}/mcp", "--method", "tools/list")
        tools = {t["name"]: t for t in listed["tools"]}
        assert set(tools) == {"evaluate", "statistics"}
        assert tools["evaluate"]["annotations"]["readOnlyHint"] is True
        assert "outputSchema" in tools["statistics"]

        called = await _inspect(
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
