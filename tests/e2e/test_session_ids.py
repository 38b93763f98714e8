"""A tool server's own log never holds an MCP session id in full."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.support.live import free_port
from tests.support.processes import MeshProcess, processes

pytestmark = pytest.mark.e2e


def test_a_tool_server_logs_session_ids_redacted(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    seen: list[str] = []

    async def open_a_session() -> None:
        async def on_response(response: object) -> None:
            session = getattr(response, "headers", {}).get("mcp-session-id")
            if session:
                seen.append(session)

        http = create_mcp_http_client()
        http.event_hooks["response"].append(on_response)
        transport = streamable_http_client(url + "/mcp", http_client=http)
        async with http, Client(transport, mode="legacy", cache=None) as client:
            await client.call_tool("evaluate", {"expression": "1+1"})

    with processes() as started:
        server = MeshProcess("calc", ["mcp-server", "calc", "--port", str(port)], url, tmp_path)
        started.append(server)
        server.wait_ready()
        anyio.run(open_a_session)
        assert server.stop() == 0
    log = server.log.read_text()
    assert seen, "the server gave the client no session id"
    assert "redacted" in log  # the SDK did log the session: redacted
    for session in set(seen):
        assert session not in log
