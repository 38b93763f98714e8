"""The ``consul`` backend over the Consul double, or over a real Consul when asked."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import httpx

from registry.backends.consul import ConsulBackend, ConsulSettings
from tests.support.consul_double import running


@contextlib.asynccontextmanager
async def consul_backend(*, real: bool = False) -> AsyncIterator[ConsulBackend]:
    """A started backend; on a real Consul (``CONSUL_HTTP_ADDR``) under a fresh KV prefix."""
    if not real:
        async with running() as (_, url):
            store = ConsulBackend(ConsulSettings(addr=url))
            await store.start()
            try:
                yield store
            finally:
                await store.close()
        return
    settings = ConsulSettings(
        addr=os.environ["CONSUL_HTTP_ADDR"],
        token=os.environ.get("CONSUL_HTTP_TOKEN") or None,
        kv_prefix=f"meshgate-test-{uuid.uuid4().hex[:8]}",
    )
    store = ConsulBackend(settings)
    await store.start()
    try:
        yield store
    finally:
        # Leave the agent as found (tests reuse service names), whoever owns what.
        instances = (await store.all_instances()).value
        await store.close()
        headers = {"X-Consul-Token": settings.token} if settings.token else {}
        async with httpx.AsyncClient(base_url=settings.addr, headers=headers) as http:
            for instance in instances:
                sid = f"{instance.service}:{instance.id}"
                await http.put(f"/v1/agent/service/deregister/{sid}")
            await http.delete(f"/v1/kv/{settings.kv_prefix}/", params={"recurse": "1"})
