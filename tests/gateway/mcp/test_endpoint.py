"""``/mcp`` through real parts: the SDK client in both eras, real tool servers and an agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_servers.knowledge import create_server as create_knowledge
from tests.gateway.mcp.mesh import McpMesh, listed, running_mcp_mesh, tool_server
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

EXPECTED = {
    "calc__evaluate",
    "calc__statistics",
    "knowledge__search",
    "calculator__calculate",
    "calculator__extract_expression",
    "meshgate__find_agents",
    "meshgate__delegate",
}
ERAS = ("legacy", "2026-07-28")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[McpMesh]:
    async with running_mcp_mesh() as mesh:
        await listed(mesh, EXPECTED)
        yield mesh


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("mode", ERAS)
async def test_lists_the_mesh_with_schemas_and_annotations(mesh: McpMesh, mode: Any) -> None:
    async with Client(mesh.mcp, mode=mode, cache=None) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= EXPECTED
    evaluate = tools["calc__evaluate"]
    assert evaluate.annotations is not None
    assert evaluate.annotations.read_only_hint
    assert evaluate.input_schema["required"] == ["expression"]
    assert evaluate.output_schema is not None
    assert tools["calculator__calculate"].input_schema["required"] == ["text"]


@pytest.mark.parametrize("mode", ERAS)
async def test_calls_a_tool_server_tool_an_agent_tool_and_a_skill(mesh: McpMesh, mode: Any) -> None:
    async with Client(mesh.mcp, mode=mode, cache=None) as client:
        result = await client.call_tool("calc__evaluate", {"expression": "17*23"})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["value"] == 391
        found = await client.call_tool("calculator__extract_expression", {"text": "what is 17*23?"})
        assert not found.is_error, text_of(found)
        assert found.structured_content is not None
        assert found.structured_content["expression"].replace(" ", "") == "17*23"
        answer = await client.call_tool("calculator__calculate", {"text": "What is 17*23?"})
        assert not answer.is_error, text_of(answer)
        assert "391" in text_of(answer)
        assert answer.structured_content is not None
        assert answer.structured_content["data"]["value"] == 391


async def test_mesh_tools_find_and_delegate(mesh: McpMesh) -> None:
    async with Client(mesh.mcp, mode="2026-07-28", cache=None) as client:
        found = await client.call_tool("meshgate__find_agents", {"skill": "calculate"})
        assert found.structured_content is not None
        assert [a["name"] for a in found.structured_content["agents"]] == ["calculator"]
        none = await client.call_tool("meshgate__find_agents", {"text": "poetry"})
        assert none.structured_content == {"agents": []}
        answer = await client.call_tool(
            "meshgate__delegate", {"skill": "calculate", "text": "What is 2**10?"}
        )
        assert "1024" in text_of(answer)
        nobody = await client.call_tool("meshgate__delegate", {"agent": "nobody", "text": "hi"})
        assert nobody.is_error


@pytest.mark.parametrize("mode", ERAS)
async def test_unknown_tool_is_a_protocol_error(mesh: McpMesh, mode: Any) -> None:
    async with Client(mesh.mcp, mode=mode, cache=None) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("nope__nothing", {})
    assert caught.value.error.code == types.INVALID_PARAMS


async def test_upstream_protocol_errors_pass_through(mesh: McpMesh) -> None:
    async with Client(mesh.mcp, mode="2026-07-28", cache=None) as client:
        bad = await client.call_tool("calc__evaluate", {"expression": 5})
    assert bad.is_error  # the tool server's schema check, relayed


async def test_foreign_origin_is_refused(mesh: McpMesh) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"origin": "https://evil.example", "mcp-protocol-version": "2026-07-28"}
    response = await mesh.http.post(mesh.mcp, json=body, headers=headers)
    assert response.status_code == 403


async def test_a_stopped_tool_server_leaves_the_list_and_sessions_hear_it(mesh: McpMesh) -> None:
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    async with Client(mesh.mcp, mode="legacy", cache=None, message_handler=on_message) as legacy:

        async def names() -> set[str]:
            return {t.name for t in (await legacy.list_tools()).tools}

        async with tool_server("notes", create_knowledge, mesh.registry_url):
            await eventually(names, lambda n: "notes__search" in n, within=10)
            with anyio.fail_after(5):
                await heard.wait()
            heard = anyio.Event()
        # Stopped (it deregisters): gone within 2 s, the session hears it, the rest works.
        remaining = await eventually(names, lambda n: "notes__search" not in n, within=2)
        assert remaining >= EXPECTED
        with anyio.fail_after(5):
            await heard.wait()
        result = await legacy.call_tool("calc__evaluate", {"expression": "1+1"})
        assert result.structured_content is not None
        assert result.structured_content["value"] == 2


async def test_tools_call_bytes_on_the_wire(mesh: McpMesh) -> None:
    """A stateless client's raw POST gets a plain JSON answer (no 500 on junk either)."""
    headers = {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "calc__evaluate",
        "accept": "application/json, text/event-stream",
    }
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "calc__evaluate", "arguments": {"expression": "6*7"}, "_meta": meta},
    }
    response = await mesh.http.post(mesh.mcp, json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["structuredContent"]["value"] == 42
    junk = await mesh.http.post(mesh.mcp, content=b"{", headers=headers)
    assert junk.status_code < 500
