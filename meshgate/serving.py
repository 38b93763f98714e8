"""Run one ASGI app as a Meshgate process under uvicorn."""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from meshgate.telemetry import configure_tracing

__all__ = ["run_app"]

#: Young-generation threshold of the cyclic GC while serving (CPython's default: 700).
#: Requests in flight survive young collections and get promoted, and promoted
#: objects are what schedules full collections: fewer young collections, fewer
#: promotions. Garbage freed by reference counting never needs the collector.
GC_YOUNG_THRESHOLD = 10_000


def _exit_cleanly(signum: int, frame: Any) -> None:
    # Python puts default handlers back while it finalizes: a second SIGTERM
    # then (a supervisor repeating itself) would kill the process with -15
    # after a clean shutdown. Ignored, it cannot.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


class _Server(uvicorn.Server):
    """uvicorn's server, with the heap built at startup kept out of the collector's way."""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        freeze_heap()


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


class _Capture:
    """Stands in for the transport while uvicorn writes a response head."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data = data


class _Cycle(RequestResponseCycle):
    """uvicorn's request cycle, but a response with a Content-Length body goes out
    in one write (head and body), not two: one ``send`` system call and one TCP
    segment instead of two, for the sender and for the reader.

    The head is built by uvicorn itself (the same headers and checks); only its
    write is held until the first body message.
    """

    held: bytes | None = None

    async def send(self, message: Any) -> None:
        held = self.held
        if held is not None:
            self.held = None
            if self.disconnected:
                return
            if message["type"] == "http.response.body" and not self.flow.write_paused:
                self._write_body(held, message)
                return
            self.transport.write(held)
        elif (
            not self.response_started
            and message["type"] == "http.response.start"
            and not self.disconnected
            and not self.flow.write_paused
        ):
            head = self._usual_head(message)
            if head is not None:
                self.held = head
                return
            # Nothing in uvicorn's head path awaits here (not paused, still
            # connected), so the transport is swapped for the capture alone.
            transport, capture = self.transport, _Capture()
            self.transport = capture  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            if (
                self.chunked_encoding is False
                and self.expected_content_length
                and self.scope["method"] != "HEAD"
            ):
                self.held = capture.data
            else:
                transport.write(capture.data)
            return
        await super().send(message)

    def _usual_head(self, message: Any) -> bytes | None:
        """The head uvicorn would write for an answer with a Content-Length body
        and no Connection or Transfer-Encoding header; None for any other.

        uvicorn's checks, but one regex search over all names and one over all
        values (joined by a tab, which values may hold) rather than two per header.
        """
        if self.scope["method"] == "HEAD" or CLOSE_HEADER in self.scope["headers"]:
            return None
        content = [STATUS_LINE[message["status"]]]
        names: list[bytes] = []
        values: list[bytes] = []
        length: bytes | None = None
        for name, value in (*self.default_headers, *message.get("headers", ())):
            name = name.lower()
            if name == b"content-length":
                if length is not None:
                    return None
                length = value
            elif name == b"connection" or name == b"transfer-encoding":
                return None
            names.append(name)
            values.append(value)
            content += (name, b": ", value, b"\r\n")
        if (
            length is None
            or not length.isdigit()
            or length == b"0"
            or HEADER_RE.search(b"".join(names))
            or HEADER_VALUE_RE.search(b"\t".join(values))
        ):
            return None  # uvicorn decides (and refuses what it refuses)
        self.response_started = True
        self.waiting_for_100_continue = False
        self.expected_content_length = int(length)
        self.chunked_encoding = False
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        return b"".join(content)

    def _write_body(self, head: bytes, message: Any) -> None:
        # uvicorn's own Content-Length body branch, with the head in front.
        body: bytes = message.get("body", b"")
        if len(body) > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        self.expected_content_length -= len(body)
        self.transport.write(head + body)
        if not message.get("more_body", False):
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose requests run in a :class:`_Cycle`."""

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not previous and type(cycle) is RequestResponseCycle:
            # The request's task has been created but has not run yet: it looks
            # ``send`` up on the cycle when it starts, and finds this class's.
            cycle.__class__ = _Cycle


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
    than adding its own (two of each would confuse clients), trusts no
    ``X-Forwarded-*`` header, and writes each response of known length in one
    send (:class:`_Cycle`).

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
        http=_Protocol if proxy else "auto",
        # A proxy is the edge: a caller's X-Forwarded-For must not choose the
        # address it is rate-limited by (uvicorn trusts it from 127.0.0.1).
        proxy_headers=not proxy,
    )
    server = _Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
