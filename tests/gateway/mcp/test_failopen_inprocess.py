"""Session clients hear list_changed at each removal of an in-process tool server."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from mcp_servers.knowledge import create_server as create_knowledge
from tests.gateway.mcp.mesh import running_mcp_mesh, tool_server
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


async def test_sessions_hear_every_removal_of_an_in_process_tool_server() -> None:
    # Regression: stopping one in-process uvicorn server used to end every SSE
    # stream of the test process (sse-starlette's shutdown watcher), the
    # gateway's session streams included, and the list_changed sent at the
    # removal was lost about one time in three.
    changed = 0

    async def on_message(message: Any) -> None:
        nonlocal changed
        if isinstance(message, types.ToolListChangedNotification):
            changed += 1

    async def heard() -> int:
        return changed

    async with running_mcp_mesh() as mesh:
        for _ in range(3):
            async with Client(
                mesh.mcp, mode="legacy", cache=None, message_handler=on_message
            ) as session:

                async def names() -> set[str]:
                    return {t.name for t in (await session.list_tools()).tools}

                async with tool_server("notes", create_knowledge, mesh.registry_url):
                    await eventually(names, lambda n: "notes__search" in n, within=10)
                    seen = await eventually(heard, lambda n: n > 0, within=5)
                await eventually(names, lambda n: "notes__search" not in n, within=5)
                await eventually(heard, seen.__lt__, within=5)
            changed = 0
