"""Run one ASGI app as a Meshgate process under uvicorn."""

from __future__ import annotations

import signal
import sys
from typing import Any

import uvicorn

from meshgate.telemetry import configure_tracing

__all__ = ["run_app"]


def _exit_cleanly(signum: int, frame: Any) -> None:
    # Python puts default handlers back while it finalizes: a second SIGTERM
    # then (a supervisor repeating itself) would kill the process with -15
    # after a clean shutdown. Ignored, it cannot.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def run_app(
    app: Any,
    *,
    host: str,
    port: int,
    grace_seconds: int = 5,
    service: str = "meshgate",
    proxy: bool = False,
) -> None:
    """Serve ``app`` until SIGTERM or Ctrl-C, then shut down gracefully.

    A ``proxy`` relays its upstreams' ``Date`` and ``Server`` headers rather
    than adding its own (two of each would confuse clients).

    uvicorn re-raises the signal that stopped it once shutdown is complete;
    with this handler in place a SIGTERM stop then ends with status 0, so a
    supervisor can tell a requested stop from a crash.
    """
    configure_tracing(service)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=grace_seconds,
        server_header=not proxy,
        date_header=not proxy,
    )
