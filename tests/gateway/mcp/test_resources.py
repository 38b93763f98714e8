"""Resources and prompts of the mesh's tool servers through ``/mcp``, in both eras.

Real parts on loopback sockets: a registry, the knowledge tool server (which
has a resource, a resource template and a prompt; its requests are counted),
calc (which has none) and the gateway app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import GatewaySettings
from gateway.mcp.offers import Offer, build_extras
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
PROMPT = "knowledge__explain_topic"


class MethodCounter:
    """Passes everything to ``app``; counts requests by their ``Mcp-Method`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.counts: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = dict(scope["headers"]).get(b"mcp-method", b"").decode()
            self.counts[method] = self.counts.get(method, 0) + 1
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Mesh:
    mcp: str
    registry_url: str
    knowledge: MethodCounter


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10, trust_env=False))
        settings = RegistrySettings(url_policy=UrlPolicy.loopback())
        registry_url = await stack.enter_async_context(serve(create_app(MemoryBackend(), settings)))
        port = free_port()
        hosting = HostingConfig(
            service="knowledge", port=port, registry_url=registry_url, check=CHECK
        )
        counter = MethodCounter(build_tool_server_app(create_knowledge(), hosting))
        await stack.enter_async_context(serve(counter, port=port))
        await stack.enter_async_context(tool_server("calc", create_calc, registry_url))
        host, _, _ = gateway_with_mcp(
            GatewaySettings(registry_url=registry_url, watch_wait=5), http
        )
        mcp = await stack.enter_async_context(serve(host)) + "/mcp"
        async with Client(mcp, mode="2026-07-28", cache=None) as client:

            async def prompts() -> set[str]:
                return {p.name for p in (await client.list_prompts()).prompts}

            await eventually(prompts, lambda names: PROMPT in names, within=15)
        yield Mesh(mcp, registry_url, counter)


def text_of(contents: list[Any]) -> str:
    return "".join(c.text for c in contents if isinstance(c, types.TextResourceContents))


@pytest.mark.parametrize("mode", ERAS)
async def test_lists_and_reads_resources_and_templates(mesh: Mesh, mode: Any) -> None:
    async with Client(mesh.mcp, mode=mode, cache=None) as client:
        listed = {r.uri: r for r in (await client.list_resources()).resources}
        listed_templates = (await client.list_resource_templates()).resource_templates
        names = await client.read_resource("knowledge://topics")
        topic = await client.read_resource("knowledge://topics/with")
    assert listed["knowledge://topics"].mime_type == "text/plain"
    assert [t.uri_template for t in listed_templates] == ["knowledge://topics/{name}"]
    assert "with" in text_of(names.contents).split("\n")
    assert 'The "with" statement' in text_of(topic.contents)


@pytest.mark.parametrize("mode", ERAS)
async def test_lists_and_gets_namespaced_prompts(mesh: Mesh, mode: Any) -> None:
    async with Client(mesh.mcp, mode=mode, cache=None) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        got = await client.get_prompt(PROMPT, {"name": "with"})
    assert prompts.keys() == {PROMPT}  # calc has none
    arguments = prompts[PROMPT].arguments or []
    assert [(a.name, a.required) for a in arguments] == [("name", True)]
    message = got.messages[0].content
    assert isinstance(message, types.TextContent)
    assert "Explain the Python help topic 'with'" in message.text


@pytest.mark.parametrize("mode", ERAS)
async def test_unknown_names_and_upstream_refusals_are_json_rpc_errors(
    mesh: Mesh, mode: Any
) -> None:
    async with Client(mesh.mcp, mode=mode, cache=None) as client:
        for call in (
            client.read_resource("nowhere://at/all"),
            client.get_prompt("nope__nothing", {}),
            client.read_resource("knowledge://topics/no-such-topic"),  # the upstream's refusal
            client.get_prompt(PROMPT, {"name": "no-such-topic"}),
        ):
            with pytest.raises(MCPError) as caught:
                await call
            assert caught.value.error.code == types.INVALID_PARAMS


async def test_upstreams_are_asked_when_the_table_moves_not_per_request(mesh: Mesh) -> None:
    before = dict(mesh.knowledge.counts)
    async with Client(mesh.mcp, mode="2026-07-28", cache=None) as client:
        for _ in range(5):
            await client.list_resources()
            await client.list_prompts()
    for method in ("resources/list", "resources/templates/list", "prompts/list"):
        assert mesh.knowledge.counts.get(method, 0) == before.get(method, 0), method
    assert before.get("prompts/list", 0) >= 1


async def test_a_second_server_with_the_same_uris_and_fail_open(mesh: Mesh) -> None:
    heard: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.PromptListChangedNotification):
            heard.append("prompts")
        elif isinstance(message, types.ResourceListChangedNotification):
            heard.append("resources")

    async with Client(mesh.mcp, mode="legacy", cache=None, message_handler=on_message) as session:

        async def prompts() -> set[str]:
            return {p.name for p in (await session.list_prompts()).prompts}

        async def notified() -> list[str]:
            return heard

        async with tool_server("notes", create_knowledge, mesh.registry_url):
            await eventually(prompts, lambda n: "notes__explain_topic" in n, within=10)
            await eventually(notified, lambda kinds: "prompts" in kinds, within=5)
            # Both list knowledge://topics: the first service by name serves it, once.
            uris = [r.uri for r in (await session.list_resources()).resources]
            assert uris.count("knowledge://topics") == 1
            got = await session.get_prompt("notes__explain_topic", {"name": "for"})
            assert got.messages
        heard.clear()
        left = await eventually(prompts, lambda n: "notes__explain_topic" not in n, within=5)
        assert PROMPT in left
        await eventually(notified, lambda kinds: "prompts" in kinds, within=5)
        topic = await session.read_resource("knowledge://topics/for")
        assert topic.contents


def test_collisions_resolve_by_service_name_whatever_the_order() -> None:
    resource = {"uri": "doc://a", "name": "a"}
    template = {"uriTemplate": "doc://t/{id}", "name": "t"}
    prompt = {"name": "p"}
    offers = {
        "zeta": Offer(resources=(resource,), templates=(template,), prompts=(prompt,)),
        "alpha": Offer(resources=(resource,), templates=(template,), prompts=(prompt,)),
    }
    extras = build_extras(offers)
    assert extras.owner_of("doc://a") == ("alpha", "alpha__a")
    assert extras.owner_of("doc://t/7") == ("alpha", "alpha__t")
    assert extras.owner_of("doc://t/7/8") is None
    assert [r.uri for r in extras.resources] == ["doc://a"]
    assert [p.name for p in extras.prompts] == ["alpha__p", "zeta__p"]
    assert extras.prompt_owners["zeta__p"] == ("zeta", "p")
    assert build_extras(dict(reversed(offers.items()))) == extras


async def test_stateless_lists_carry_the_ttl_hint(mesh: Mesh) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        for method in ("resources/list", "resources/templates/list", "prompts/list"):
            headers = {
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": method,
                "accept": "application/json, text/event-stream",
            }
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"_meta": meta}}
            answer = await http.post(mesh.mcp, json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["ttlMs"] == 1_000, method
