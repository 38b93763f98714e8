"""The raw fast path of ``/mcp``: what it forwards, what it answers, and what it leaves
to the SDK server (whose answers must stay exactly as they were)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client

from gateway.mcp.fastpath import FastPath
from tests.gateway.mcp.counting import META, CountingMesh, counting_mesh, mcp_headers, rpc
from tests.support.live import free_port
from tests.support.polling import eventually
from tests.support.tracing import span_recorder

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[CountingMesh]:
    span_recorder()  # tracing on: forwarded calls carry the route span's traceparent
    async with counting_mesh() as mesh:
        yield mesh


async def sdk_answer(mesh: CountingMesh, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """The same request answered by the SDK server behind the fast path, in process."""
    fast = mesh.apps[0].state.mcp.app
    assert isinstance(fast, FastPath)
    transport = httpx.ASGITransport(app=fast.fallback)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as sdk:
        return await sdk.post("/mcp", json=body, headers=headers)


async def test_tools_list_is_the_answer_the_sdk_server_gives(mesh: CountingMesh) -> None:
    body = {"jsonrpc": "2.0", "id": "list-1", "method": "tools/list", "params": {"_meta": META}}
    headers = mcp_headers("tools/list")
    fast = await mesh.http.post(mesh.mcp, json=body, headers=headers)
    sdk = await sdk_answer(mesh, body, headers)
    assert fast.status_code == sdk.status_code == 200
    assert fast.headers["content-type"] == "application/json"
    assert fast.json() == sdk.json()
    assert fast.json()["result"]["ttlMs"] == 1000


async def test_a_call_keeps_the_callers_id_arguments_and_meta(mesh: CountingMesh) -> None:
    before = len(mesh.tool_calls())
    meta = {**META, "example.com/note": "kept"}
    body = {
        "jsonrpc": "2.0",
        "id": "call-7",
        "method": "tools/call",
        "params": {"name": "counter__bump", "arguments": {"key": "fp-1"}, "_meta": meta},
    }
    answer = await mesh.http.post(
        mesh.mcp, json=body, headers=mcp_headers("tools/call", "counter__bump")
    )
    assert answer.status_code == 200
    assert answer.json()["id"] == "call-7"
    assert answer.json()["result"]["structuredContent"] == {"key": "fp-1", "calls": 1}
    [sent] = mesh.tool_calls()[before:]
    assert sent["id"] == "call-7"
    assert sent["params"]["name"] == "bump"
    assert sent["params"]["arguments"] == {"key": "fp-1"}
    forwarded_meta = sent["params"]["_meta"]
    assert forwarded_meta["example.com/note"] == "kept"
    assert (
        forwarded_meta["io.modelcontextprotocol/clientInfo"]
        == META["io.modelcontextprotocol/clientInfo"]
    )
    assert forwarded_meta["traceparent"].startswith("00-")
    route = [s for s in span_recorder().get_finished_spans() if s.name == "mesh.route"]
    assert any(s.context.span_id == int(forwarded_meta["traceparent"][36:52], 16) for s in route)


async def test_an_sse_answer_reaches_the_client_as_one_json_response(mesh: CountingMesh) -> None:
    params = {
        "name": "counter__progress",
        "arguments": {"steps": 2},
        "_meta": {**META, "progressToken": "p-1"},
    }
    direct = await rpc(
        mesh.http, mesh.counter_url + "/mcp", "tools/call", {**params, "name": "progress"}
    )
    assert direct.headers["content-type"].startswith("text/event-stream")  # the case under test
    answer = await rpc(mesh.http, mesh.mcp, "tools/call", params, request_id=11)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["id"] == 11
    assert answer.json()["result"]["structuredContent"] == {"steps": 2}


BAD_REQUESTS: dict[str, tuple[dict[str, str], dict[str, Any], int]] = {
    "foreign origin": ({"origin": "https://evil.example"}, {}, 403),
    "unknown tool": ({"mcp-name": "nope__nothing"}, {"name": "nope__nothing"}, 400),
    "name header mismatch": ({"mcp-name": "counter__lookup"}, {}, 400),
    "unsupported version": ({"mcp-protocol-version": "2099-01-01"}, {}, 400),
    "no json accepted": ({"accept": "text/event-stream"}, {}, 406),
    "arguments not an object": ({}, {"arguments": [1]}, 400),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
async def test_a_bad_request_gets_the_sdk_servers_answer_and_goes_nowhere(
    mesh: CountingMesh, case: str
) -> None:
    extra_headers, extra_params, status = BAD_REQUESTS[case]
    params = {"name": "counter__bump", "arguments": {"key": "never"}, "_meta": META, **extra_params}
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
    headers = {**mcp_headers("tools/call", "counter__bump"), **extra_headers}
    before = len(mesh.tool_calls())
    answer = await mesh.http.post(mesh.mcp, json=body, headers=headers)
    sdk = await sdk_answer(mesh, body, headers)
    assert answer.status_code == status, answer.text
    assert (answer.status_code, answer.text) == (sdk.status_code, sdk.text)
    assert len(mesh.tool_calls()) == before
    assert mesh.calls["bump:never"] == 0


async def test_junk_is_a_json_rpc_error_never_a_500(mesh: CountingMesh) -> None:
    headers = mcp_headers("tools/call", "counter__bump") | {"content-type": "application/json"}
    for junk in (b"{", b"[]", b'{"jsonrpc":"2.0","id":1,"method":"tools/call"}', b"null"):
        answer = await mesh.http.post(mesh.mcp, content=junk, headers=headers)
        assert 400 <= answer.status_code < 500, (junk, answer.status_code, answer.text)
        assert "error" in answer.json()


async def test_skills_mesh_tools_and_other_methods_are_the_sdk_servers(mesh: CountingMesh) -> None:
    found = await rpc(
        mesh.http, mesh.mcp, "tools/call", {"name": "meshgate__find_agents", "arguments": {}}
    )
    assert found.json()["result"]["structuredContent"] == {"agents": []}
    discover = await rpc(mesh.http, mesh.mcp, "server/discover", {})
    assert discover.status_code == 200, discover.text
    assert discover.json()["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == (
        "meshgate"
    )


async def test_an_upstream_error_result_is_relayed(mesh: CountingMesh) -> None:
    gone = await rpc(
        mesh.http, mesh.mcp, "tools/call", {"name": "counter__bump", "arguments": {"key": 5}}
    )
    assert gone.status_code == 200
    result = gone.json()["result"]
    assert result["isError"] is True  # the upstream's own schema check, relayed
    assert types.CallToolResult.model_validate(result).is_error


async def test_a_tool_bound_to_mcp_param_headers_is_checked_by_the_sdk_server(
    mesh: CountingMesh,
) -> None:
    params = {"name": "counter__regional", "arguments": {"region": "eu"}}
    wrong = await rpc(mesh.http, mesh.mcp, "tools/call", params, headers={"mcp-param-region": "us"})
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["error"]["code"] == types.HEADER_MISMATCH
    assert mesh.calls["regional:eu"] == 0
    right = await rpc(mesh.http, mesh.mcp, "tools/call", params, headers={"mcp-param-region": "eu"})
    assert right.status_code == 200, right.text
    assert right.json()["result"]["structuredContent"] == {"region": "eu"}


async def test_an_unreachable_instance_is_the_same_error_result_in_both_paths(
    mesh: CountingMesh,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    path = f"{mesh.registry_url}/v1/services/ghost/instances/ghost-1"
    tool = {"name": "boo", "inputSchema": {"type": "object"}}
    registration = {
        "kind": "mcp-server",
        "url": nowhere + "/mcp",
        "tools": [tool],
        "check": {"interval_seconds": 0, "ttl_seconds": 600},
    }
    assert (await mesh.http.put(path, json=registration)).status_code in (200, 201)
    assert (await mesh.http.put(path + "/heartbeat", json={"status": "passing"})).status_code == 200

    async def listed() -> set[str]:
        answer = (await rpc(mesh.http, mesh.mcp, "tools/list", {})).json()
        return {t["name"] for t in answer["result"]["tools"]}

    await eventually(listed, lambda names: "ghost__boo" in names, within=10)
    fast = await rpc(mesh.http, mesh.mcp, "tools/call", {"name": "ghost__boo", "arguments": {}})
    async with Client(mesh.mcp, mode="legacy", cache=None) as client:
        sdk = await client.call_tool("ghost__boo", {})
    assert fast.status_code == 200
    result = types.CallToolResult.model_validate(fast.json()["result"])
    assert result.is_error
    assert sdk.is_error
    assert result.content == sdk.content
    assert "ghost" in str(result.content)
    assert (await mesh.http.delete(path)).status_code in (200, 204)


async def test_a_trace_context_in_meta_is_continued(mesh: CountingMesh) -> None:
    """MCP carries trace context in ``params._meta``: the forwarded call stays in its trace."""
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    meta = {**META, "traceparent": f"00-{trace_id}-{span_id}-01"}
    params = {"name": "counter__bump", "arguments": {"key": "traced"}, "_meta": meta}
    before = len(mesh.tool_calls())
    answer = await rpc(mesh.http, mesh.mcp, "tools/call", params)
    assert answer.status_code == 200, answer.text
    [sent] = mesh.tool_calls()[before:]
    forwarded = sent["params"]["_meta"]["traceparent"]
    assert forwarded.split("-")[1] == trace_id
    assert forwarded.split("-")[2] != span_id  # the gateway's own span, a child of the caller's
    [route] = [
        s
        for s in span_recorder().get_finished_spans()
        if s.name == "mesh.route" and s.context.trace_id == int(trace_id, 16)
    ]
    assert route.parent is not None
    assert route.parent.span_id == int(span_id, 16)
