"""A cheap leak check: the objects a gateway keeps do not grow with requests.

The soak measurement (``bench/soak.py``) watches a real gateway's resident
memory over 100,000 requests; this test counts the objects the cyclic GC
tracks in one process running a registry, a calc tool server and a gateway,
after a warm-up and again after more requests. A per-request leak of even one
container object shows as thousands.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import GatewaySettings, create_gateway
from gateway.mcp import McpSettings
from gateway.mcp.cache import CacheSettings
from mcp_servers.calc import create_server
from mcp_servers.hosting import HostingConfig
from mcp_servers.runtime import build_tool_server_app
from registry.backends import MemoryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.chaos.load import META
from tests.chaos.mesh import CHECK
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

WARM_UP = 600
MEASURED = 1500
#: Objects the process may gain over MEASURED requests (caches filling their
#: bounds, interned strings): far below one per request.
ALLOWED = MEASURED // 5

HEADERS = {
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "calc__evaluate",
    "accept": "application/json, text/event-stream",
}


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        policy = RegistrySettings(url_policy=UrlPolicy.loopback())
        async with serve(create_app(MemoryBackend(), policy)) as registry:
            port = free_port()
            hosting = HostingConfig(
                service="calc", instance="calc-1", port=port, registry_url=registry, check=CHECK
            )
            async with serve(build_tool_server_app(create_server(), hosting), port=port):
                # No result cache: its entries would be growth by design.
                mcp = McpSettings(cache=CacheSettings(enabled=False))
                settings = GatewaySettings(registry_url=registry, watch_wait=5, mcp=mcp)
                async with serve(create_gateway(settings, http=http)) as url:
                    await eventually(lambda: _call(http, url, 0), bool, within=15)
                    yield http, url


async def _call(http: httpx.AsyncClient, gateway: str, number: int) -> bool:
    body = {
        "jsonrpc": "2.0",
        "id": number,
        "method": "tools/call",
        "params": {
            "_meta": META,
            "name": "calc__evaluate",
            "arguments": {"expression": f"{number} + 1"},
        },
    }
    response = await http.post(gateway + "/mcp", json=body, headers=HEADERS)
    return response.status_code == 200 and f'"{number + 1}' in response.text


async def _tracked_after(http: httpx.AsyncClient, gateway: str, start: int, count: int) -> int:
    for number in range(start, start + count):
        assert await _call(http, gateway, number), number
        if number % 10 == 0:
            assert (await http.get(gateway + "/v1/agents")).status_code == 200
    gc.collect()
    return len(gc.get_objects())


async def test_objects_tracked_do_not_grow_with_requests(
    gateway: tuple[httpx.AsyncClient, str],
) -> None:
    http, url = gateway
    before = await _tracked_after(http, url, 1, WARM_UP)
    after = await _tracked_after(http, url, 1 + WARM_UP, MEASURED)
    assert after - before < ALLOWED, (before, after)
