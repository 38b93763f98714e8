"""Hundreds of spellings of internal addresses: refused at registration and never probed.

A canary listens on 127.0.0.2 and 127.0.0.1 (ephemeral ports) and counts
connections. Every URL of the corpus points at a canary, or at another
internal address (metadata, private, unspecified), with the canary's port.
The registry runs with its production policy (no private addresses) and its
real probe. At registration every URL is refused (422 naming the field), as
the instance URL and as an Agent Card's interface URL. At dispatch, the same
URLs put straight into the store (as a Consul peer could) are probed by the
registry's checker, which must refuse each before connecting. The canary must
see no connection; a control run with the loopback policy shows that it would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from typing import Any

import httpx
import pytest

from registry.backends import MemoryBackend
from registry.models import Instance, Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.security.canary import Canary, canary
from tests.security.ssrf_corpus import spellings
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

PUBLIC = "93.184.215.14"
#: Fake DNS (no test may reach a real resolver).
ZONE = {"public.test": [PUBLIC], "canary.test": ["127.0.0.2"], "mixed.test": [PUBLIC, "127.0.0.2"]}
OTHER_TARGETS = ("169.254.169.254", "10.0.0.1", "192.168.1.1", "0.0.0.0", "100.100.100.200")


async def fake_dns(host: str, port: int) -> list[str]:
    return ZONE.get(host, [])


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def watched() -> AsyncIterator[Canary]:
    async with canary(("127.0.0.2", "127.0.0.1")) as seen:
        yield seen
    assert seen.connections == []


def corpus(seen: Canary) -> list[str]:
    """URLs of the corpus: each spelling of a canary's address (and others) at its port."""
    urls: list[str] = []
    for host, port in seen.addresses:
        for spelling in spellings(IPv4Address(host)):
            urls += [f"http://{spelling}:{port}/", f"https://{spelling}:{port}/a2a"]
    port = seen.addresses[0][1]
    for target in OTHER_TARGETS:
        urls += [f"http://{s}:{port}/" for s in spellings(IPv4Address(target))[::3]]
    names = ["localhost", "LOCALHOST.", "api.localhost", "canary.test", "mixed.test"]
    urls += [f"http://{name}:{port}/" for name in names]
    urls += [f"http://[::1]:{port}/", f"http://[0:0:0:0:0:0:0:1]:{port}/"]
    return list(dict.fromkeys(urls))


def mcp_registration(url: str, **check: Any) -> dict[str, Any]:
    check = {"interval_seconds": 0.05, "ttl_seconds": 60, **check}
    return {"kind": "mcp-server", "url": url, "tools": [], "check": check}


def agent_registration(interface_url: str) -> dict[str, Any]:
    card = {
        "name": "probe",
        "description": "An agent whose card names an internal address.",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": interface_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "s", "name": "s", "description": "s", "tags": ["s"]}],
    }
    check = {"interval_seconds": 0, "ttl_seconds": 60}
    return {"kind": "a2a-agent", "url": "http://public.test/", "card": card, "check": check}


@contextlib.asynccontextmanager
async def registry(
    backend: MemoryBackend, policy: UrlPolicy | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = RegistrySettings(url_policy=policy or UrlPolicy(), resolver=fake_dns)
    app = create_app(backend, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            yield client


def test_the_corpus_is_large_enough() -> None:
    fake = Canary(addresses=[("127.0.0.2", 1), ("127.0.0.1", 2)])
    assert len(corpus(fake)) >= 400


async def test_every_spelling_is_refused_at_registration(watched: Canary) -> None:
    urls = corpus(watched)
    backend = MemoryBackend()
    accepted: list[str] = []
    async with registry(backend) as client:
        for i, url in enumerate(urls):
            for body, field in (
                (mcp_registration(url), "url"),
                (agent_registration(url), "card.supportedInterfaces[0].url"),
            ):
                response = await client.put(f"/v1/services/s{i}/instances/a", json=body)
                if response.status_code != 422:
                    accepted.append(url)
                    continue
                assert [e["field"] for e in response.json()["errors"]] == [field], url
        assert (await client.get("/v1/instances")).json() == []
    assert accepted == []
    assert watched.connections == []


async def test_the_probe_refuses_every_spelling_before_connecting(watched: Canary) -> None:
    # Straight into the store, past the door's validation, as a Consul peer could.
    backend = MemoryBackend()
    urls = corpus(watched)
    for i, url in enumerate(urls):
        # Probed at once on registration; a slow interval keeps 600 instances'
        # re-probes from saturating the loop (under coverage tracing it starved).
        raw = Registration.model_validate(mcp_registration(url, interval_seconds=5))
        await backend.register(f"s{i}", "a", raw, owner=None)
    async with registry(backend) as client:

        async def instances() -> list[Instance]:
            answer = await client.get("/v1/instances")
            return [Instance.model_validate(i) for i in answer.json()]

        def all_probed(found: list[Instance]) -> bool:
            outputs = [c.output for i in found for c in i.checks if c.name == "probe"]
            return len(outputs) == len(urls) and all(
                o.startswith("refused by the URL policy") for o in outputs
            )

        await eventually(instances, all_probed, within=30)
    assert watched.connections == []


async def test_the_canary_sees_a_probe_the_policy_admits() -> None:
    # The control: with loopback admitted, the same kind of instance is probed.
    async with canary(("127.0.0.2",)) as seen:
        backend = MemoryBackend()
        host, port = seen.addresses[0]
        registration = Registration.model_validate(mcp_registration(f"http://{host}:{port}/"))
        await backend.register("control", "a", registration, owner=None)
        assert registration.kind is Kind.MCP_SERVER
        async with registry(backend, UrlPolicy.loopback()):

            async def connections() -> int:
                return len(seen.connections)

            await eventually(connections, lambda n: n > 0)
