"""schemathesis against the registry's own OpenAPI document, on a real registry.

The registry runs under uvicorn on a loopback port with its real routes,
validation and memory store. Every name resolves to one public address (no
DNS from a test) and the active probe answers without connecting: fuzzed
registrations may name any public address, and the suite must not reach the
internet.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import schemathesis

from registry.backends import MemoryBackend
from registry.models import Instance
from registry.probes import ProbeResult
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.fuzz.openapi import fuzz, scale
from tests.fuzz.threaded import in_thread
from tests.support.live import serve

#: Cases per operation and generation mode: 8 operations with parameters x 2 modes x 70 >= 1,000.
EXAMPLES = 70


async def public_dns(host: str, port: int) -> list[str]:
    # Every name is one public address, so fuzzed registrations can succeed.
    return ["93.184.215.14"]


async def no_network(http: object, instance: Instance) -> ProbeResult:
    return ProbeResult(False, "the fuzz registry probes nothing")


@contextlib.asynccontextmanager
async def registry() -> AsyncIterator[str]:
    # Blocking queries are answered within 50 ms, so that thousands fit in a test.
    settings = RegistrySettings(
        url_policy=UrlPolicy(), resolver=public_dns, probe=no_network, max_wait_seconds=0.05
    )
    async with serve(create_app(MemoryBackend(), settings)) as url:
        yield url


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    with in_thread(registry) as url:
        yield url


def test_every_registry_operation_answers_as_documented(registry_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{registry_url}/openapi.json")
    run = fuzz(schema, registry_url, examples=EXAMPLES * scale())
    print(f"registry: {run.total} cases in {run.seconds:.1f}s; statuses {dict(run.statuses)}")
    assert run.total >= 1_000, run.cases
    assert not any(status >= 500 for status in run.statuses)
