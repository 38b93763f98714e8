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
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import uvicorn

from tests.support.consul_double.app import ConsulDouble
from tests.support.consul_double.records import parse_duration
from tests.support.consul_double.state import ConsulState
from tests.support.live import serve

__all__ = ["ConsulDouble", "ConsulState", "parse_duration", "running", "running_in_thread"]


@contextlib.asynccontextmanager
async def running(
    double: ConsulDouble | None = None, *, port: int = 0
) -> AsyncIterator[tuple[ConsulDouble, str]]:
    """Serve ``double`` (a fresh one that reaps without Consul's 1-minute floor by default)."""
    double = double or ConsulDouble(min_deregister_after=0.0)
    async with serve(double.app(), port=port) as url:
        yield double, url


@contextlib.contextmanager
def running_in_thread(double: ConsulDouble | None = None) -> Iterator[tuple[ConsulDouble, str]]:
    """Serve ``double`` from its own thread and event loop, as a separate Consul would be.

    Tests that measure the caller's event loop use this, so the double's own
    work does not count against it.
    """
    double = double or ConsulDouble(min_deregister_after=0.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(double.app(), log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Consul double did not start")
        time.sleep(0.01)
    try:
        yield double, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
