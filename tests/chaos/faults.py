"""A fault-injection ASGI middleware: slow or fail an upstream on demand.

Wrap any app (a reference tool server or agent) in :class:`FaultInjector`
and change its :class:`Faults` while it serves: every HTTP request under
``prefix`` is delayed by ``delay`` seconds, and with probability ``abort``
it fails halfway: a 200 head promising a body, one byte of it, then the
connection closes (a peer crashing mid-answer; uvicorn closes a connection
whose app raised after starting its response). Other routes (``/readyz``,
``/metrics``) are left alone.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Abort", "FaultInjector", "Faults"]


class Abort(Exception):
    """Raised after a partial answer: uvicorn then closes the connection."""


@dataclass
class Faults:
    """What the injector does now (mutable: a nemesis flips it while the app serves)."""

    #: Seconds each matching request waits before the app sees it.
    delay: float = 0.0
    #: Probability that a matching request's answer is cut off after its head.
    abort: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    #: Requests delayed and aborted so far.
    delayed: int = 0
    aborted: int = 0

    def clear(self) -> None:
        self.delay = 0.0
        self.abort = 0.0


def _not_injected(record: logging.LogRecord) -> bool:
    # uvicorn logs each injected abort with a traceback: noise, not news.
    return not (record.exc_info and isinstance(record.exc_info[1], Abort))


class FaultInjector:
    """ASGI middleware applying :class:`Faults` to HTTP requests under ``prefix``."""

    def __init__(self, app: ASGIApp, faults: Faults, *, prefix: str = "/mcp") -> None:
        logging.getLogger("uvicorn.error").addFilter(_not_injected)
        self.app = app
        self.faults = faults
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        faults = self.faults
        if faults.delay > 0:
            faults.delayed += 1
            await anyio.sleep(faults.delay)
        if faults.abort > 0 and faults.rng.random() < faults.abort:
            faults.aborted += 1
            head = [(b"content-type", b"application/json"), (b"content-length", b"64")]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise Abort("fault injected: answer cut off")
        await self.app(scope, receive, send)
