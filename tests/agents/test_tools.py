"""MeshTools against a real registry and real MCP tool servers on loopback sockets."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agents.errors import NoPeer, PeerTimeout, PeerUnavailable, ToolFailed
from agents.tools import MCP_VERSION, MeshTools
from mcp_servers.calc import create_server as create_calc
from mcp_servers.hosting import HostingConfig
from mcp_servers.runtime import build_tool_server_app
from registry.client import RegistryClient
from tests.agents.mesh import (
    TRACE_ID,
    Recorder,
    gateway_app,
    mcp_registration,
    register,
    registry_client,
    remote_parent,
)
from tests.support.live import free_port, serve
from tests.support.peers import running_mcp_server

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def tools_http(
    requests: list[httpx.Request] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        if requests is not None:
            requests.append(request)

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as http:
        yield http


@contextlib.asynccontextmanager
async def running_calc() -> AsyncIterator[str]:
    """Engineer A's calc server under its runtime (it registers nothing); yield its MCP URL."""
    app = build_tool_server_app(create_calc(), HostingConfig(service="calc"))
    async with serve(app) as url:
        yield url + "/mcp"


async def test_calls_a_passing_instance_from_the_registry() -> None:
    requests: list[httpx.Request] = []
    async with registry_client() as registry, running_calc() as calc, tools_http(requests) as http:
        await register(registry, "calc", "calc-1", mcp_registration(calc, ("evaluate",)))
        tools = MeshTools(registry, http=http, gateway_url=None)
        with remote_parent():
            result = await tools.call("calc", "evaluate", {"expression": "17*23"})
    assert result.structured == {"expression": "17*23", "value": 391, "text": "391"}
    assert '"value": 391' in result.text
    assert not result.is_error
    [sent] = requests
    assert str(sent.url) == calc
    assert sent.headers["mcp-protocol-version"] == MCP_VERSION
    assert sent.headers["mcp-method"] == "tools/call"
    assert sent.headers["mcp-name"] == "evaluate"
    assert sent.headers["traceparent"].split("-")[1] == TRACE_ID
    meta = json.loads(sent.content)["params"]["_meta"]
    assert meta["traceparent"] == sent.headers["traceparent"]
    assert meta["io.modelcontextprotocol/protocolVersion"] == MCP_VERSION
    assert meta["io.modelcontextprotocol/clientInfo"]["name"] == "meshgate-agent"


async def test_tool_errors_and_refusals() -> None:
    async with registry_client() as registry, running_calc() as calc, tools_http() as http:
        await register(registry, "calc", "calc-1", mcp_registration(calc, ("evaluate",)))
        tools = MeshTools(registry, http=http, gateway_url=None)
        # The tool ran and reported an error: a result, not an exception.
        failed = await tools.call("calc", "evaluate", {"expression": "1/0"})
        assert failed.is_error
        assert "division by zero" in failed.text
        # The server refused the call itself (JSON-RPC error): an exception.
        with pytest.raises(ToolFailed, match="Unknown tool") as caught:
            await tools.call("calc", "nope", {})
        assert caught.value.rpc_code == -32602


async def test_round_robin_over_instances() -> None:
    requests: list[httpx.Request] = []
    async with (
        registry_client() as registry,
        running_mcp_server() as first,
        running_mcp_server() as second,
        tools_http(requests) as http,
    ):
        await register(registry, "tools", "tools-1", mcp_registration(first))
        await register(registry, "tools", "tools-2", mcp_registration(second))
        tools = MeshTools(registry, http=http, gateway_url=None)
        for i in range(4):
            result = await tools.call("tools", "add", {"a": i, "b": 1})
            assert result.structured == {"result": i + 1}
    assert sorted(Counter(r.url.port for r in requests).values()) == [2, 2]


async def test_no_passing_instance_is_no_peer() -> None:
    async with registry_client() as registry, running_mcp_server() as url, tools_http() as http:
        await register(registry, "tools", "tools-1", mcp_registration(url), passing=False)
        tools = MeshTools(registry, http=http, gateway_url=None)
        with pytest.raises(NoPeer, match="no passing MCP server tools"):
            await tools.call("tools", "add", {"a": 1, "b": 2})
        with pytest.raises(NoPeer):
            await tools.call("missing", "add", {})
    async with tools_http() as http:
        down = RegistryClient(f"http://127.0.0.1:{free_port()}", http=http)
        with pytest.raises(NoPeer, match="cannot look up tools"):
            await MeshTools(down, http=http, gateway_url=None).call("tools", "add", {})


async def test_dead_instance_is_peer_unavailable() -> None:
    async with registry_client() as registry, tools_http() as http:
        dead = f"http://127.0.0.1:{free_port()}/mcp"
        await register(registry, "tools", "tools-1", mcp_registration(dead))
        with pytest.raises(PeerUnavailable, match="cannot reach tools") as caught:
            await MeshTools(registry, http=http, gateway_url=None).call("tools", "add", {})
        assert caught.value.__cause__ is None


async def test_through_the_gateway_when_one_is_configured() -> None:
    recorder = Recorder()
    async with (
        registry_client() as registry,
        running_calc() as calc,
        serve(gateway_app({}, {"calc": calc}, recorder)) as gateway,
        tools_http() as http,
    ):
        # Nothing registered: with a gateway, the registry is not consulted.
        tools = MeshTools(registry, http=http, gateway_url=gateway)
        with remote_parent():
            result = await tools.call("calc", "evaluate", {"expression": "2**10"})
    assert result.structured["value"] == 1024
    assert recorder.paths == ["/mcp"]
    assert recorder.bodies[0]["params"]["name"] == "calc__evaluate"
    assert recorder.headers[0]["mcp-name"] == "calc__evaluate"
    assert recorder.headers[0]["traceparent"].split("-")[1] == TRACE_ID


def via_gateway(http: httpx.AsyncClient, url: str, timeout: float = 5.0) -> MeshTools:
    """MeshTools that send every call to ``url`` (with a gateway the registry is not asked)."""
    unused = RegistryClient(f"http://127.0.0.1:{free_port()}", http=http)
    return MeshTools(unused, http=http, gateway_url=url, timeout=timeout)


def answering(body: bytes, media_type: str, status: int = 200) -> Starlette:
    """A server that gives every POST the same answer (what a stream or a proxy may send)."""

    async def reply(request: Request) -> Response:
        return Response(body, status, media_type=media_type)

    return Starlette(routes=[Route("/mcp", reply, methods=["POST"])])


async def test_reads_an_answer_streamed_as_sse() -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "7"}]}}
    stream = f"event: message\ndata: {json.dumps(note)}\n\ndata: {json.dumps(answer)}\n\n"
    async with serve(answering(stream.encode(), "text/event-stream")) as url, tools_http() as http:
        tools = via_gateway(http, url)
        result = await tools.call("any", "thing", {})
    assert result.text == "7"
    assert result.structured is None


@pytest.mark.parametrize(
    ("body", "media_type", "status", "match"),
    [
        (b"<html>bad gateway</html>", "text/html", 502, "HTTP 502 without a JSON-RPC"),
        (b'{"jsonrpc": "2.0", "id": 1, "result": []}', "application/json", 200, "no object"),
        (b"data: {}\n\n", "text/event-stream", 200, "without a JSON-RPC"),
    ],
)
async def test_answers_outside_the_protocol_are_peer_unavailable(
    body: bytes, media_type: str, status: int, match: str
) -> None:
    async with serve(answering(body, media_type, status)) as url, tools_http() as http:
        tools = via_gateway(http, url)
        with pytest.raises(PeerUnavailable, match=match):
            await tools.call("any", "thing", {})


async def test_input_required_is_tool_failed() -> None:
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"resultType": "input_required"}}
    app = answering(json.dumps(answer).encode(), "application/json")
    async with serve(app) as url, tools_http() as http:
        with pytest.raises(ToolFailed, match="input_required"):
            await via_gateway(http, url).call("any", "thing", {})


async def test_slow_tool_times_out() -> None:
    release = anyio.Event()

    async def hang(request: Request) -> Response:
        await release.wait()
        return Response(b"{}", media_type="application/json")

    app = Starlette(routes=[Route("/mcp", hang, methods=["POST"])])
    async with serve(app) as url, tools_http() as http:
        tools = via_gateway(http, url, timeout=0.3)
        try:
            with pytest.raises(PeerTimeout) as caught:
                await tools.call("any", "thing", {})
        finally:
            release.set()
    assert caught.value.status == 504
