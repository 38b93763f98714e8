"""A Consul HTTP API test double (no Consul binary can be installed here).

It implements, with Consul's documented semantics, the endpoints the registry's
``consul`` backend uses: agent service registration and TTL updates, HTTP
checks with thresholds, ``/v1/health/service`` (``?passing``) and
``/v1/health/state``, KV with CAS, blocking queries with ``X-Consul-Index``,
TTL expiry to critical and deregister-critical-after. Each behaviour names the
documentation page it follows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tests.support.consul_double.app import ConsulDouble
from tests.support.consul_double.state import ConsulState, parse_duration
from tests.support.live import serve

__all__ = ["ConsulDouble", "ConsulState", "parse_duration", "running"]


@contextlib.asynccontextmanager
async def running(
    double: ConsulDouble | None = None, *, port: int = 0
) -> AsyncIterator[tuple[ConsulDouble, str]]:
    """Serve ``double`` (a fresh one that reaps without Consul's 1-minute floor by default)."""
    double = double or ConsulDouble(min_deregister_after=0.0)
    async with serve(double.app(), port=port) as url:
        yield double, url
