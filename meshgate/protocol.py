"""The gateway's HTTP/1.1 server protocol: uvicorn's httptools one, leaner per request.

What changes, and only that (the bytes on the wire are uvicorn's):

* A response with a Content-Length body goes out in one write, head and body
  together: one ``send`` system call and one TCP segment instead of two; a whole
  keep-alive answer is written at the end of the event loop's pass, with the
  others ready by then (:mod:`gateway.proxy.batch`).
* The usual head is checked with one regex search over all names and one over
  all values, rather than two per header.
* The request's event is a plain flag with at most one waiter (uvicorn makes
  an ``asyncio.Event`` per request and a coroutine per ``receive``).
* The keep-alive timeout is one lazy timer per connection, re-armed when it
  fires, instead of a timer made after each response and cancelled by the next
  request.
* An app with a ``raw_request(scope, body, reply)`` coroutine is offered each
  ``POST /a2a/...`` whose body is whole by the time its task runs: the body as
  bytes, and the cycle as ``reply`` (``whole`` writes one complete answer, no
  ASGI messages; ``send``/``receive`` remain for anything else). It returns
  False, having touched nothing, to have the request run through the ASGI app.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import CLOSE_HEADER, service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from gateway.proxy.batch import WriteBatch

__all__ = ["ProxyProtocol", "RawHandler"]

#: ``raw_request(scope, body, reply)``: True once it answered, False to decline.
RawHandler = Callable[[Any, bytes, "_Cycle"], Awaitable[bool]]

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 34\r\nconnection: close\r\n\r\nrequest head not received in time\n"
)


class _Capture:
    """Stands in for the transport while uvicorn writes a response head."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data = data


class _Signal:
    """``asyncio.Event`` as the cycle uses it (set, clear, is_set, wait), made lazily:
    no deque per request, and no future until someone actually waits.

    Several may wait at once (a streaming response listens for the disconnect
    while its app may ask too), each on a future of its own, as with an Event.
    """

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        if self._flag:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)


class _Cycle(RequestResponseCycle):
    """uvicorn's request cycle, but a response with a Content-Length body goes out
    in one write (head and body), not two: one ``send`` system call and one TCP
    segment instead of two, for the sender and for the reader.

    The head is built by uvicorn itself (the same headers and checks); only its
    write is held until the first body message.
    """

    held: bytes | None = None
    #: The app's raw handler, offered this request if its body is whole in time.
    raw: RawHandler | None = None
    #: Where whole keep-alive answers wait for the end of the loop's pass.
    batch: WriteBatch | None = None

    async def run_asgi(self, app: Any) -> None:
        raw = self.raw
        if raw is None or self.more_body or self.disconnected or self.waiting_for_100_continue:
            await super().run_asgi(app)
            return
        # The body came with the head (the usual small request): taken as it is,
        # as one receive() would have.
        body = bytes(self.body)
        self.body = bytearray()
        self.message_event.clear()
        try:
            handled = await raw(self.scope, body, self)
        except BaseException as exc:
            # uvicorn's run_asgi, the same outcomes.
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.transport.close()
            self.on_response = lambda: None
            return
        if not handled:
            self.body = bytearray(body)
            self.message_event.set()
            await super().run_asgi(app)
            return
        if not self.response_started and not self.disconnected:
            self.logger.error("ASGI callable returned without starting response.")
            await self.send_500_response()
        elif not self.response_complete and not self.disconnected:
            self.logger.error("ASGI callable returned without completing response.")
            self.transport.close()
        self.on_response = lambda: None

    async def whole(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        """One complete answer (``headers`` with its Content-Length): the bytes of
        ``http.response.start`` and ``http.response.body`` sent through ``send``,
        written at once without building either message."""
        if not (self.response_started or self.disconnected or self.flow.write_paused):
            head = self._usual_head(status, headers)
            if head is not None:
                self._write(head, body, False)
                return
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def send(self, message: Any) -> None:
        held = self.held
        if held is not None:
            self.held = None
            if self.disconnected:
                return
            if message["type"] == "http.response.body" and not self.flow.write_paused:
                self._write(held, message.get("body", b""), message.get("more_body", False))
                return
            self.transport.write(held)
        elif (
            self.response_started
            and not self.response_complete
            and message["type"] == "http.response.body"
            and not self.disconnected
            and not self.flow.write_paused
            and self.scope["method"] != "HEAD"
        ):
            # A streamed body's next chunk (an SSE event): written here, without
            # a trip through uvicorn's send.
            self._write(b"", message.get("body", b""), message.get("more_body", False))
            return
        elif (
            not self.response_started
            and message["type"] == "http.response.start"
            and not self.disconnected
            and not self.flow.write_paused
        ):
            head = self._usual_head(message["status"], message.get("headers", ()))
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

    async def receive(self) -> Any:
        # uvicorn's, but a body that is already here is returned without a wait.
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            event = self.message_event
            if not event.is_set():
                await event.wait()
            event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = bytearray()
        return message

    def _usual_head(self, status: int, headers: Any) -> bytes | None:
        """The head uvicorn would write for an answer with a Content-Length body
        and no Connection or Transfer-Encoding header; None for any other.

        uvicorn's checks, but one regex search over all names and one over all
        values (joined by a tab, which values may hold) rather than two per header.
        """
        if self.scope["method"] == "HEAD" or CLOSE_HEADER in self.scope["headers"]:
            return None
        content = [STATUS_LINE[status]]
        names: list[bytes] = []
        values: list[bytes] = []
        length: bytes | None = None
        for name, value in (*self.default_headers, *headers):
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

    def _write_held(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def _write(self, head: bytes, body: bytes, more: bool) -> None:
        # uvicorn's own body branches (chunked or Content-Length), with the head
        # (if still held) in front.
        if self.chunked_encoding:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more:
                data += b"0\r\n\r\n"
            self.transport.write(head + data)
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            if more or not self.keep_alive or self.batch is None:
                self.transport.write(head + body)
            else:
                # The whole answer: written at the end of the loop's pass, with the
                # others ready by then (gateway.proxy.batch).
                self.batch.add(self._write_held, head + body)
        if not more:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


class ProxyProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose requests run in a :class:`_Cycle`.

    With a ``header_timeout`` (:meth:`with_header_timeout`), a connection whose
    request head is not complete that many seconds after its first byte (or
    after the connection opened) gets a 408 and is closed: uvicorn has no such
    timeout, and a client sending its headers a byte at a time (slowloris)
    would otherwise hold its connection forever.
    """

    header_timeout: float | None = None
    _raw: RawHandler | None = None
    _batch: WriteBatch | None = None
    _idle = False
    _idle_since = 0.0
    _keep_alive_timer: asyncio.TimerHandle | None = None
    _head_pending = False
    _head_since = 0.0
    _head_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_header_timeout(cls, seconds: float | None) -> type[ProxyProtocol]:
        """This protocol with a request-head timeout (None: none, uvicorn's way)."""
        return type(cls.__name__, (cls,), {"header_timeout": seconds})

    # -- request-head timeout: one lazy timer per connection --------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._raw = getattr(self.app, "raw_request", None)
        self._batch = WriteBatch.of(self.loop)
        self._head_started()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started()

    def _head_started(self) -> None:
        if self.header_timeout is None:
            return
        self._head_pending = True
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(
                self._head_since + self.header_timeout, self._head_due
            )

    def _head_due(self) -> None:
        self._head_timer = None
        if not self._head_pending or self.transport.is_closing():
            return  # the next request's first byte arms it again
        assert self.header_timeout is not None
        due = self._head_since + self.header_timeout
        if self.loop.time() < due:
            self._head_timer = self.loop.call_at(due, self._head_due)
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def on_headers_complete(self) -> None:
        # uvicorn's, building a _Cycle with a _Signal.
        self._head_pending = False
        http_version = self.parser.get_http_version()
        method = self.parser.get_method()
        self.scope["method"] = method.decode("ascii")
        if http_version != "1.1":
            self.scope["http_version"] = http_version
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        self.scope["path"] = self.root_path + path
        self.scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        self.scope["query_string"] = parsed_url.query or b""
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        existing_cycle = self.cycle
        self.cycle = _Cycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=_Signal(),  # type: ignore[arg-type]
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        self.cycle.batch = self._batch
        if method == b"POST" and app is self.app and raw_path.startswith(b"/a2a/"):
            self.cycle.raw = self._raw
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:
            # Pipelined HTTP requests need to be queued up.
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def shutdown(self) -> None:
        # A whole answer may still wait in the write batch: the close that a
        # graceful shutdown makes of an idle connection comes after it.
        batch = self._batch
        if batch is not None and batch.pending:
            batch.add(lambda _: super(ProxyProtocol, self).shutdown(), b"")
        else:
            super().shutdown()

    # -- keep-alive: one lazy timer per connection ------------------------------

    def _unset_keepalive_if_required(self) -> None:
        self._idle = False  # the timer, when it fires, finds the connection busy

    def on_response_complete(self) -> None:
        # uvicorn's, but idleness is noted rather than a timer made.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle = False
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle = True
        self._idle_since = self.loop.time()
        if self._keep_alive_timer is None:
            self._keep_alive_timer = self.loop.call_at(
                self._idle_since + self.timeout_keep_alive, self._keep_alive_due
            )

    def _keep_alive_due(self) -> None:
        self._keep_alive_timer = None
        if not self._idle or self.transport.is_closing():
            return  # busy: the end of its response arms the timer again
        due = self._idle_since + self.timeout_keep_alive
        if self.loop.time() < due:
            self._keep_alive_timer = self.loop.call_at(due, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
