"""schemathesis against the gateway's OpenAPI document, on a real mesh.

A registry, an echo agent (the real agent runtime) and the gateway each run
under uvicorn on loopback ports; the gateway requires an API key, which the
fuzzer sends. ``/v1/invoke/echo`` and ``/v1/stream/echo`` reach the agent, so
fuzzed bodies cross the whole path.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import schemathesis

from gateway.app import GatewaySettings, create_gateway
from gateway.security import AuthSettings
from registry.backends import MemoryBackend
from registry.client import RegistryClient
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.agents.mesh import register, running_agent
from tests.fuzz.openapi import fuzz, scale
from tests.fuzz.threaded import in_thread
from tests.gateway.integration.mesh import Gates, echo_agent, echo_registration
from tests.support.live import serve
from tests.support.polling import eventually

KEY = "fuzz-gateway-key-0123456789"
#: Cases per operation and generation mode: 3 operations with parameters, the two that
#: name an agent twice (a random one, then ``echo``), x 2 modes x 110 >= 1,000.
EXAMPLES = 110


@contextlib.asynccontextmanager
async def mesh() -> AsyncIterator[str]:
    gates = Gates()
    settings = RegistrySettings(url_policy=UrlPolicy.loopback())
    async with contextlib.AsyncExitStack() as stack:
        registry_url = await stack.enter_async_context(serve(create_app(MemoryBackend(), settings)))
        http = await stack.enter_async_context(httpx.AsyncClient(trust_env=False))
        agent_url = await stack.enter_async_context(running_agent(echo_agent("A", gates)))
        stack.callback(gates.close)
        await register(
            RegistryClient(registry_url, http=http), "echo", "a", echo_registration(agent_url)
        )
        gateway = create_gateway(
            GatewaySettings(registry_url=registry_url, auth=AuthSettings(api_keys=(KEY,)))
        )
        url = await stack.enter_async_context(serve(gateway))

        async def agents() -> httpx.Response:
            return await http.get(f"{url}/v1/agents", headers={"x-api-key": KEY})

        await eventually(agents, lambda r: r.status_code == 200 and len(r.json()) == 1)
        yield url


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with in_thread(mesh) as url:
        yield url


def test_every_gateway_operation_answers_as_documented(gateway_url: str) -> None:
    schema = schemathesis.openapi.from_url(
        f"{gateway_url}/openapi.json", headers={"x-api-key": KEY}
    )
    pinned = {path: {"agent": "echo"} for path in ("/v1/invoke/{agent}", "/v1/stream/{agent}")}
    examples = EXAMPLES * scale()
    run = fuzz(schema, gateway_url, examples=examples, headers={"x-api-key": KEY}, pinned=pinned)
    print(f"gateway: {run.total} cases in {run.seconds:.1f}s; statuses {dict(run.statuses)}")
    assert run.total >= 1_000, run.cases
    assert not any(status >= 500 for status in run.statuses)
