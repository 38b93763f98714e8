"""A tool server that speaks only the handshake versions, behind ``/mcp``.

The upstream is a real mcp 1.x server (FastMCP over streamable HTTP, from the
a2a-handler tool environment). It refuses the gateway's stateless calls, so the
gateway reaches it through one pooled SDK session; clients of either era see
its tools like any other.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client

from gateway.app import GatewaySettings
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.models import Kind, Registration
from registry.selfreg import SelfRegistration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.gateway.mcp.mesh import CHECK, gateway_with_mcp
from tests.support.external import TOOLS
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

PYTHON = TOOLS / "a2a-handler" / "bin" / "python"
SERVER = Path(__file__).with_name("legacy_server.py")
ERAS = ("legacy", "2026-07-28")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@contextlib.contextmanager
def legacy_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    if not PYTHON.exists():
        pytest.skip("the mcp 1.x environment is missing: run `make peers`")
    process = subprocess.Popen(
        [str(PYTHON), str(SERVER), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
async def mcp_url() -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with legacy_server(port) as process:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:

            async def answers() -> bool:
                assert process.poll() is None, process.stderr and process.stderr.read()
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get(url)).status_code < 500
                return False

            await eventually(answers, bool, within=20)
            settings = RegistrySettings(url_policy=UrlPolicy.loopback())
            async with serve(create_app(MemoryBackend(), settings)) as registry_url:
                async with Client(url, mode="legacy", cache=None) as direct:
                    listed = (await direct.list_tools()).tools
                tools = [
                    t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed
                ]
                registry = RegistryClient(registry_url, http=http)
                registration = Registration(kind=Kind.MCP_SERVER, url=url, tools=tools, check=CHECK)
                # The server cannot register itself: a sidecar does, and keeps its TTL fed.
                sidecar = SelfRegistration(registry, "legacy", "legacy-1", registration)
                host, _, _ = gateway_with_mcp(
                    GatewaySettings(registry_url=registry_url, watch_wait=5), http
                )
                async with sidecar, serve(host) as gateway:
                    mcp = gateway + "/mcp"
                    async with Client(mcp, mode="2026-07-28", cache=None) as client:

                        async def names() -> set[str]:
                            return {t.name for t in (await client.list_tools()).tools}

                        await eventually(names, lambda n: "legacy__add" in n, within=15)
                    yield mcp


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("mode", ERAS)
async def test_a_handshake_only_tool_server_is_called_through_the_gateway(
    mcp_url: str, mode: Any
) -> None:
    async with Client(mcp_url, mode=mode, cache=None) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["legacy__add"].input_schema["required"] == ["a", "b"]
        result = await client.call_tool("legacy__add", {"a": 17, "b": 25})
        assert not result.is_error, text_of(result)
        assert text_of(result) == "42"


async def test_its_calls_share_one_pooled_session(mcp_url: str) -> None:
    async with Client(mcp_url, mode="2026-07-28", cache=None) as one:
        first = text_of(await one.call_tool("legacy__session", {}))
    async with Client(mcp_url, mode="legacy", cache=None) as other:
        second = text_of(await other.call_tool("legacy__session", {}))
        third = text_of(await other.call_tool("legacy__session", {}))
    assert first.isdigit()
    assert first == second == third


async def test_its_refusals_reach_the_client(mcp_url: str) -> None:
    async with Client(mcp_url, mode="2026-07-28", cache=None) as client:
        bad = await client.call_tool("legacy__add", {"a": "seventeen", "b": 1})
    assert bad.is_error
    assert "validation error" in text_of(bad).lower()
