"""The ``consul`` backend over the Consul double, or over a real Consul when asked."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

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
        # Leave the agent as found: tests register the same service names.
        for instance in (await store.all_instances()).value:
            await store.deregister(instance.service, instance.id, owner=None)
        await store.close()
