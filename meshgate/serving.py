"""Run one ASGI app as a Meshgate process under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from meshgate.protocol import ProxyProtocol
from meshgate.telemetry import configure_tracing

__all__ = ["ConnectionLimits", "run_app"]


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may hold of a server.

    ``header_timeout``: seconds a request head may take from its first byte
    (slowloris; a proxy only, see :class:`~meshgate.protocol.ProxyProtocol`);
    ``keep_alive``: seconds an idle connection stays open (uvicorn's
    ``timeout_keep_alive``); ``max_connections``: open connections beyond which
    new requests get 503 (uvicorn's ``limit_concurrency``; None: no cap).
    """

    header_timeout: float | None = 10.0
    keep_alive: int = 5
    max_connections: int | None = None


#: Young-generation threshold of the cyclic GC while serving (CPython's default: 700).
#: A young collection costs about the objects alive in it (the requests in
#: flight), whatever the threshold, so its cost per request falls with the
#: threshold; and fewer survivors get promoted, which is what schedules full
#: collections. The hot path makes no cyclic garbage (measured): everything it
#: drops is freed by reference counting.
GC_YOUNG_THRESHOLD = 50_000

#: Seconds between sweeps of the young generations (see :class:`YoungSweep`).
GC_SWEEP_SECONDS = 2.0


def _exit_cleanly(signum: int, frame: Any) -> None:
    # Python puts default handlers back while it finalizes: a second SIGTERM
    # then (a supervisor repeating itself) would kill the process with -15
    # after a clean shutdown. Ignored, it cannot.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


class _Server(uvicorn.Server):
    """uvicorn's server, with the heap built at startup kept out of the collector's way."""

    sweep: YoungSweep | None = None

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        freeze_heap()
        self.sweep = YoungSweep(GC_SWEEP_SECONDS)

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        if self.sweep is not None:
            self.sweep.stop()
        await super().shutdown(sockets)


class YoungSweep:
    """Collect the young generations every ``seconds`` on the running loop.

    The control plane does make cyclic garbage: every httpx response is a
    cycle (response and its stream) holding its body, and a registry watch or
    a catalogue fetch answers with kilobytes. With the young threshold at
    :data:`GC_YOUNG_THRESHOLD`, that garbage waited for 50,000 net new objects,
    hundreds of thousands of requests: a gateway grew ~1.3 MiB per 10,000
    requests while instances churned (bench/soak.py). A sweep scans only the
    young objects, a few thousand (well under a millisecond), and bounds the
    garbage to what a few seconds make.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(seconds, self._sweep)

    def _sweep(self) -> None:
        gc.collect(1)
        self._handle = self._loop.call_later(self._seconds, self._sweep)

    def stop(self) -> None:
        self._handle.cancel()


def freeze_heap() -> None:
    """Move every object alive now (modules, the app, its startup state) out of the
    cyclic GC's reach, and collect the young generation less often.

    A full collection of a gateway's ~150,000 startup objects stalls the event
    loop for about 90 ms, every second or so under load (it was the p99).
    Frozen objects are never scanned again; those that die are still freed.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def run_app(
    app: Any,
    *,
    host: str,
    port: int,
    grace_seconds: int = 5,
    service: str = "meshgate",
    proxy: bool = False,
    limits: ConnectionLimits = ConnectionLimits(),
) -> None:
    """Serve ``app`` until SIGTERM or Ctrl-C, then shut down gracefully.

    A ``proxy`` relays its upstreams' ``Date`` and ``Server`` headers rather
    than adding its own (two of each would confuse clients), trusts no
    ``X-Forwarded-*`` header, and writes each response of known length in one
    send (:class:`~meshgate.protocol.ProxyProtocol`).

    uvicorn re-raises the signal that stopped it once shutdown is complete;
    with this handler in place a SIGTERM stop then ends with status 0, so a
    supervisor can tell a requested stop from a crash.
    """
    configure_tracing(service)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        # meshgate.logs keeps uvicorn.access below WARNING: no access log is ever
        # written, but uvicorn would still format each line's arguments.
        access_log=False,
        timeout_graceful_shutdown=grace_seconds,
        server_header=not proxy,
        date_header=not proxy,
        http=ProxyProtocol.with_header_timeout(limits.header_timeout) if proxy else "auto",
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.max_connections,
        # A proxy is the edge: a caller's X-Forwarded-For must not choose the
        # address it is rate-limited by (uvicorn trusts it from 127.0.0.1).
        proxy_headers=not proxy,
    )
    server = _Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
