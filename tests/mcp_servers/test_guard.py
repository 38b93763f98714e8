"""ToolCallGuard: unknown tools are protocol errors; schema breaks read clearly."""

from __future__ import annotations

import pytest
from mcp import Client, MCPError

from mcp_servers.guard import install_guard, schema_errors
from mcp_servers.hosting import HostingConfig
from mcp_servers.quiet import quiet_server
from mcp_servers.runtime import build_tool_server_app
from tests.mcp_servers.support import call, in_process, modern, running_tool_server

pytestmark = pytest.mark.anyio


def _server():  # type: ignore[no-untyped-def]
    from mcp.server.mcpserver.exceptions import ToolError

    server = quiet_server("flaky")

    @server.tool()
    def refuse(count: int) -> int:
        """Refuse on purpose."""
        raise ToolError(f"refused {count}")

    @server.tool()
    def crash(count: int) -> int:
        """Crash on purpose."""
        raise RuntimeError("secret internals")

    return server


async def test_unknown_tool_is_invalid_params_in_the_stateless_era() -> None:
    app = build_tool_server_app(_server(), HostingConfig(service="flaky"))
    async with in_process(app) as client:
        answer = await modern(client, "tools/call", {"name": "nope", "arguments": {}})
        assert answer.status_code == 400
        assert answer.json()["error"] == {"code": -32602, "message": "Unknown tool: nope"}


async def test_unknown_tool_is_invalid_params_in_the_handshake_era() -> None:
    async with (
        running_tool_server("calc") as (url, _),
        Client(f"{url}/mcp", mode="legacy", cache=None) as client,
    ):
        with pytest.raises(MCPError) as caught:
            await client.call_tool("nope", {})
        assert caught.value.error.code == -32602
        bad = await client.call_tool("evaluate", {"expression": 7})
        assert bad.is_error
        assert bad.content[0].text == (  # type: ignore[union-attr]
            "Invalid arguments for tool 'evaluate': expression: must be of type string"
        )


async def test_a_tools_own_errors_are_left_alone_and_crashes_stay_private() -> None:
    app = build_tool_server_app(_server(), HostingConfig(service="flaky"))
    async with in_process(app) as client:
        refused = await call(client, "refuse", count=3)
        assert refused["isError"] is True
        assert refused["content"][0]["text"] == "Error executing tool refuse: refused 3"
        crashed = await call(client, "crash", count=3)
        assert crashed["isError"] is True
        assert "secret" not in crashed["content"][0]["text"]
        # Lax coercion ("3" is an int to pydantic) is the SDK's: no rewrite when the tool ran.
        lax = await call(client, "refuse", count="3")
        assert lax["content"][0]["text"].endswith("refused 3")


async def test_malformed_requests_stay_protocol_errors() -> None:
    app = build_tool_server_app(_server(), HostingConfig(service="flaky"))
    async with in_process(app) as client:
        bad_params = await modern(client, "tools/call", {"name": "refuse", "arguments": "x"})
        assert bad_params.status_code == 400
        assert bad_params.json()["error"]["code"] == -32602
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
        }
        parse = await client.post("/mcp", content=b"{not json", headers=headers)
        assert parse.status_code == 400
        assert parse.json()["error"]["code"] == -32700
        huge = await client.post("/mcp", content=b"x" * (5 * 1024 * 1024), headers=headers)
        assert huge.status_code == 413


def test_installing_twice_adds_one_guard() -> None:
    server = _server()
    install_guard(server)
    install_guard(server)
    assert sum(type(m).__name__ == "ToolCallGuard" for m in server.middleware) == 1


def test_schema_errors_are_short() -> None:
    schema = {
        "type": "object",
        "properties": {"k": {"type": "integer", "minimum": 1, "exclusiveMaximum": 9}},
        "additionalProperties": False,
    }
    assert schema_errors(schema, {"k": 0}) == ["k: must be >= 1"]
    assert schema_errors(schema, {"k": 9}) == ["k: must be < 9"]
    assert schema_errors(schema, {"k": 2, "z": 1}) == ["arguments: unexpected argument"]
    assert schema_errors(schema, {"k": 2}) == []
