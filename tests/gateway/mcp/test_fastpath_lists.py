"""``tools/list`` shaped once per route table: in a handshake-era session the answer is
the one the SDK handler gives, and it follows the route table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mcp_servers.knowledge import create_server as create_knowledge
from tests.gateway.mcp.counting import CountingMesh, counting_mesh
from tests.gateway.mcp.mesh import tool_server
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[CountingMesh]:
    async with counting_mesh() as mesh:
        yield mesh


async def session(http: httpx.AsyncClient, url: str, *, initialized: bool = True) -> dict[str, str]:
    accept = {"accept": "application/json, text/event-stream"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1"},
        },
    }
    opened = await http.post(url, json=initialize, headers=accept)
    assert opened.status_code == 200, opened.text
    headers = {**accept, "mcp-session-id": opened.headers["mcp-session-id"]}
    headers["mcp-protocol-version"] = VERSION
    if initialized:
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post(url, json=note, headers=headers)).status_code == 202
    return headers


async def listed(http: httpx.AsyncClient, url: str, headers: dict[str, str], params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": params}
    answer = await http.post(url, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    text = answer.text
    if answer.headers["content-type"].startswith("text/event-stream"):
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    return json.loads(text)


async def test_a_sessions_list_is_the_sdk_handlers_answer(mesh: CountingMesh) -> None:
    headers = await session(mesh.http, mesh.mcp)
    shaped = await listed(mesh.http, mesh.mcp, headers, {})
    # A cursor is left to the SDK handler (which lists everything on one page).
    handled = await listed(mesh.http, mesh.mcp, headers, {"cursor": "0"})
    assert shaped == handled
    assert "counter__lookup" in {tool["name"] for tool in shaped["result"]["tools"]}


async def test_a_list_before_initialization_is_answered_as_before(mesh: CountingMesh) -> None:
    """A session that never said ``initialized``: the SDK's gate decides, not the shaped list."""
    opened = await session(mesh.http, mesh.mcp, initialized=False)
    shaped = await listed(mesh.http, mesh.mcp, opened, {})
    handled = await listed(mesh.http, mesh.mcp, opened, {"cursor": "0"})
    assert shaped == handled


async def test_the_shaped_list_follows_the_route_table(mesh: CountingMesh) -> None:
    headers = await session(mesh.http, mesh.mcp)

    async def names() -> set[str]:
        answer = await listed(mesh.http, mesh.mcp, headers, {})
        return {tool["name"] for tool in answer["result"]["tools"]}

    async with tool_server("notes", create_knowledge, mesh.registry_url):
        await eventually(names, lambda found: "notes__search" in found, within=10)
    await eventually(names, lambda found: "notes__search" not in found, within=10)
