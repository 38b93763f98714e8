"""``/mcp`` behind the gateway's auth: credentials, Origin, unknown tools, tool policy.

Everything runs for real on loopback sockets: a registry, two reference tool
servers (one of them recording the headers of every request it gets) and the
gateway app with API keys and a tool policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import GatewaySettings
from gateway.mcp import McpSettings, ToolPolicy, ToolRule
from gateway.security import AuthSettings
from mcp_servers.calc import create_server as create_calc
from mcp_servers.hosting import HostingConfig
from mcp_servers.knowledge import create_server as create_knowledge
from mcp_servers.runtime import build_tool_server_app
from registry.backends import MemoryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.gateway.mcp.mesh import CHECK, gateway_with_mcp, tool_server
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

ERAS = ("legacy", "2026-07-28")
#: ``ops`` may not see knowledge's tools; ``reader`` sees only them; ``PLAIN`` (unnamed) all.
OPS_KEY, READER_KEY, PLAIN_KEY = "ops-key-0123456789", "reader-key-0123456789", "plain-key-42"
POLICY = ToolPolicy(
    rules={
        "key:ops": ToolRule(deny=("knowledge__*",)),
        "key:reader": ToolRule(allow=("knowledge__*",)),
    }
)
SERVER_TOOLS = {"calc__evaluate", "calc__statistics", "knowledge__search"}
STATELESS_HEADERS = {
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/list",
    "accept": "application/json, text/event-stream",
}
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
STATELESS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
HANDSHAKE_HEADERS = {"accept": "application/json, text/event-stream"}
#: One raw request per era: (headers, body).
RAW = {
    "2026-07-28": (STATELESS_HEADERS, STATELESS_LIST),
    "legacy": (HANDSHAKE_HEADERS, INITIALIZE),
}


class HeaderRecorder:
    """Passes everything to ``app``; keeps the headers of every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[bytes, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({k.lower(): v for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class SecuredMesh:
    mcp: str
    recorder: HeaderRecorder
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def recorded_calc(registry_url: str) -> AsyncIterator[HeaderRecorder]:
    port = free_port()
    hosting = HostingConfig(service="calc", port=port, registry_url=registry_url, check=CHECK)
    recorder = HeaderRecorder(build_tool_server_app(create_calc(), hosting))
    async with serve(recorder, port=port):
        yield recorder


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[SecuredMesh]:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10, trust_env=False))
        settings = RegistrySettings(url_policy=UrlPolicy.loopback())
        registry_url = await stack.enter_async_context(serve(create_app(MemoryBackend(), settings)))
        recorder = await stack.enter_async_context(recorded_calc(registry_url))
        await stack.enter_async_context(tool_server("knowledge", create_knowledge, registry_url))
        auth = AuthSettings(
            api_keys=(PLAIN_KEY,), named_api_keys=(("ops", OPS_KEY), ("reader", READER_KEY))
        )
        gateway_settings = GatewaySettings(
            registry_url=registry_url,
            watch_wait=5,
            auth=auth,
            mcp=McpSettings(tool_policy=POLICY),
        )
        host, _, _ = gateway_with_mcp(gateway_settings, http)
        mcp = await stack.enter_async_context(serve(host)) + "/mcp"
        secured = SecuredMesh(mcp, recorder, http)
        async with client(secured, "2026-07-28", PLAIN_KEY) as plain:
            await eventually(lambda: names(plain), SERVER_TOOLS.issubset, within=15)
        yield secured


@contextlib.asynccontextmanager
async def client(mesh: SecuredMesh, mode: Any, key: str) -> AsyncIterator[Client]:
    """An SDK client that sends ``key`` (as a bearer token) on every request."""
    headers = {"authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=10, trust_env=False) as http:
        transport = streamable_http_client(mesh.mcp, http_client=http)
        async with Client(transport, mode=mode, cache=None) as connected:
            yield connected


async def names(connected: Client) -> set[str]:
    return {t.name for t in (await connected.list_tools()).tools}


@pytest.mark.parametrize("mode", ERAS)
async def test_no_credential_is_401_with_a_challenge(mesh: SecuredMesh, mode: str) -> None:
    headers, body = RAW[mode]
    response = await mesh.http.post(mesh.mcp, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize("mode", ERAS)
async def test_a_wrong_key_is_401(mesh: SecuredMesh, mode: str) -> None:
    headers, body = RAW[mode]
    for credential in ({"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
        response = await mesh.http.post(mesh.mcp, json=body, headers={**headers, **credential})
        assert response.status_code == 401
        assert "invalid_token" in response.headers["www-authenticate"]
        assert PLAIN_KEY not in response.text


@pytest.mark.parametrize("mode", ERAS)
async def test_a_good_key_lists_and_calls(mesh: SecuredMesh, mode: Any) -> None:
    async with client(mesh, mode, PLAIN_KEY) as connected:
        assert await names(connected) >= SERVER_TOOLS
        result = await connected.call_tool("calc__evaluate", {"expression": "6*7"})
    assert result.structured_content is not None
    assert result.structured_content["value"] == 42


async def test_a_foreign_origin_is_403_even_with_a_good_key(mesh: SecuredMesh) -> None:
    headers = {**STATELESS_HEADERS, "origin": "https://evil.example", "x-api-key": PLAIN_KEY}
    response = await mesh.http.post(mesh.mcp, json=STATELESS_LIST, headers=headers)
    assert response.status_code == 403
    local = {**STATELESS_HEADERS, "origin": "http://localhost:3000", "x-api-key": PLAIN_KEY}
    assert (await mesh.http.post(mesh.mcp, json=STATELESS_LIST, headers=local)).status_code == 200


@pytest.mark.parametrize("mode", ERAS)
async def test_an_unknown_tool_is_a_json_rpc_error(mesh: SecuredMesh, mode: Any) -> None:
    async with client(mesh, mode, PLAIN_KEY) as connected:
        with pytest.raises(MCPError) as caught:
            await connected.call_tool("nope__nothing", {})
    assert caught.value.error.code == types.INVALID_PARAMS


@pytest.mark.parametrize("mode", ERAS)
async def test_the_policy_filters_the_list_per_key(mesh: SecuredMesh, mode: Any) -> None:
    async with client(mesh, mode, OPS_KEY) as ops, client(mesh, mode, READER_KEY) as reader:
        ops_names, reader_names = await names(ops), await names(reader)
    assert "calc__evaluate" in ops_names
    assert not any(n.startswith("knowledge__") for n in ops_names)
    assert "knowledge__search" in reader_names
    assert all(n.startswith("knowledge__") for n in reader_names)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_denied_call_looks_like_an_unknown_tool(mesh: SecuredMesh, mode: Any) -> None:
    async with client(mesh, mode, READER_KEY) as reader:
        with pytest.raises(MCPError) as denied:
            await reader.call_tool("calc__evaluate", {"expression": "1+1"})
        with pytest.raises(MCPError) as unknown:
            await reader.call_tool("calc__nothing_here", {"expression": "1+1"})
        found = await reader.call_tool("knowledge__search", {"query": "for statement"})
    assert denied.value.error.code == unknown.value.error.code == types.INVALID_PARAMS
    assert denied.value.error.message.replace("evaluate", "nothing_here") == (
        unknown.value.error.message
    )
    assert not found.is_error
    async with client(mesh, mode, OPS_KEY) as ops:
        with pytest.raises(MCPError):
            await ops.call_tool("knowledge__search", {"query": "for statement"})
        allowed = await ops.call_tool("calc__evaluate", {"expression": "2+3"})
    assert allowed.structured_content is not None
    assert allowed.structured_content["value"] == 5


@pytest.mark.parametrize("mode", ERAS)
async def test_the_credential_is_never_forwarded(mesh: SecuredMesh, mode: Any) -> None:
    before = len(mesh.recorder.seen)
    async with client(mesh, mode, OPS_KEY) as ops:
        result = await ops.call_tool("calc__evaluate", {"expression": "3*3"})
    assert not result.is_error
    calls = [h for h in mesh.recorder.seen[before:] if h.get(b"mcp-method") == b"tools/call"]
    assert calls, "the call did not reach the recording tool server"
    for headers in mesh.recorder.seen:
        assert b"authorization" not in headers
        assert b"x-api-key" not in headers
        assert not any(OPS_KEY.encode() in value for value in headers.values())


async def test_the_policy_covers_prompts_by_their_public_names(mesh: SecuredMesh) -> None:
    prompt = "knowledge__explain_topic"
    async with client(mesh, "2026-07-28", READER_KEY) as reader:

        async def prompts() -> set[str]:
            return {p.name for p in (await reader.list_prompts()).prompts}

        await eventually(prompts, lambda names: prompt in names, within=10)
        assert (await reader.get_prompt(prompt, {"name": "with"})).messages
    async with client(mesh, "2026-07-28", OPS_KEY) as ops:
        assert prompt not in {p.name for p in (await ops.list_prompts()).prompts}
        with pytest.raises(MCPError) as refused:
            await ops.get_prompt(prompt, {"name": "with"})
    assert refused.value.error.code == types.INVALID_PARAMS
    assert refused.value.error.message == f"Unknown prompt: {prompt}"


async def test_the_policy_covers_resources_and_templates_by_service_and_name(
    mesh: SecuredMesh,
) -> None:
    # knowledge's "topics" resource and "topic" template go by knowledge__topics
    # and knowledge__topic: ops (denied knowledge__*) sees neither, reads neither.
    async with client(mesh, "2026-07-28", READER_KEY) as reader:

        async def uris() -> set[str]:
            return {str(r.uri) for r in (await reader.list_resources()).resources}

        await eventually(uris, lambda found: "knowledge://topics" in found, within=10)
        templates = (await reader.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["knowledge://topics/{name}"]
        assert (await reader.read_resource("knowledge://topics/with")).contents
    async with client(mesh, "2026-07-28", OPS_KEY) as ops:
        assert (await ops.list_resources()).resources == []
        assert (await ops.list_resource_templates()).resource_templates == []
        for uri in ("knowledge://topics", "knowledge://topics/with"):
            with pytest.raises(MCPError) as refused:
                await ops.read_resource(uri)
            assert refused.value.error.code == types.INVALID_PARAMS
            assert refused.value.error.message == f"Unknown resource: {uri}"
