"""One HTTP/1.1 connection to an upstream: an asyncio protocol around httptools.

The protocol object holds the state of the one exchange in flight (pipelining is
never used), so the hot path allocates little: the parser's callbacks append to
plain lists and wake at most one waiting task.
"""

from __future__ import annotations

import asyncio
import select
import socket
from typing import Protocol, cast

import httptools

from gateway.proxy.batch import WriteBatch
from gateway.proxy.errors import (
    UpstreamClosed,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)

__all__ = ["HIGH_WATER", "Connection", "Home"]

#: Unread body bytes at which the socket stops being read until the caller catches up.
HIGH_WATER = 1 << 16
#: Bodies up to this size go out in the head's write: one send, one segment.
_COALESCE = 1 << 14
_NO_BODY_STATUS = (204, 304)


class Home(Protocol):
    """Where a connection goes between exchanges (its origin's idle pool)."""

    def put(self, conn: Connection) -> None:
        """Keep a reusable connection whose exchange is over."""

    def lost(self, conn: Connection) -> None:
        """Forget an idle connection that the upstream closed."""


class _Unexpected(Exception):
    """Stops the parser: a second response on the connection, or a head too large."""


class Connection(asyncio.Protocol):
    """A connection and the exchange on it; used by the client and its responses."""

    def __init__(self, home: Home, sock: socket.socket, max_head: int) -> None:
        self.sock = sock
        self.closed = False
        #: In its origin's idle list (the pool's bookkeeping).
        self.idle = False
        self.idle_since = 0.0
        self._home = home
        self._max_head = max_head
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._limit = 0.0
        self._parser = httptools.HttpResponseParser(self)
        #: Made when the connection is first reused (see :meth:`alive`).
        self._poller: select.poll | None = None
        self._batch = WriteBatch.of(self._loop)
        #: The request waits in the batch: nothing of it was written yet.
        self._held = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.chunks: list[bytes] = []
        #: The whole response has been received (chunks may still be unread).
        self.complete = False
        self.error: UpstreamError | None = None
        self._busy = False
        self._head_only = False
        self._head_size = 0
        self._interim = False
        self._buffered = 0
        self._keep_alive = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- used by the client and the response ---------------------------------

    def alive(self) -> bool:
        """Whether an idle connection can carry a request; closes it if not.

        The upstream may have closed it (keep-alive timeout) with the FIN not yet
        seen by the event loop: polling the socket finds it before any byte of
        the request is written, which is what makes a retry safe. (A poll, not a
        ``recv(MSG_PEEK)``: no socket lock, no exception in the usual case; a
        third of the cost.)
        """
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return False
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.sock, select.POLLIN)
        if not poller.poll(0):
            return True  # nothing to read: the usual case
        # EOF, a reset, or bytes nobody asked for: either way the connection is done.
        self.abort()
        return False

    def send(self, head: bytes, body: bytes, *, head_only: bool) -> bool:
        """Write a request; False if the connection is closing or the first write
        failed, so nothing was sent.

        A request of up to ``_COALESCE`` bytes goes out in one write at the end
        of the event loop's pass (:class:`~gateway.proxy.batch.WriteBatch`); if
        that write fails, the exchange fails with ``sent=False``.
        """
        transport = cast(asyncio.Transport, self._transport)
        if transport.is_closing():
            self.closed = True
            return False
        self._busy = True
        self._head_only = head_only
        if len(body) <= _COALESCE:
            self._held = True
            self._batch.add(self._write_held, head + body)
            return True
        transport.write(head)
        if transport.is_closing():
            self.closed = True
            return False
        transport.write(body)
        return True

    def _write_held(self, data: bytes) -> None:
        if self.closed or not self._busy:
            return  # aborted first: ``_held`` stays, and the exchange's error says not sent
        transport = cast(asyncio.Transport, self._transport)
        if not transport.is_closing():
            transport.write(data)
            if not transport.is_closing():
                self._held = False
                return
        message = "the upstream closed the connection before the request was written"
        self._fail(UpstreamClosed(message, sent=False))

    async def wait(self, limit: float) -> None:
        """Until the parser has news (head, body, end, error), or fail the exchange
        with ``UpstreamTimeout`` after ``limit`` seconds."""
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        self._limit = limit
        self._deadline = deadline = loop.time() + limit
        # One lazy timer per connection rather than a timer per wait: it stays
        # armed past the wait and, when it fires, re-arms for the deadline then
        # current. A request costs a clock read instead of a timer made and cancelled.
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)
        try:
            await waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        """All body bytes received so far; resumes reading if it was paused."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self._buffered = 0
        if self._paused:
            self._paused = False
            if not self.closed:
                cast(asyncio.Transport, self._transport).resume_reading()
        return data

    def release(self) -> None:
        """The exchange is over: back to the pool if reusable, else closed."""
        transport = cast(asyncio.Transport, self._transport)
        # Request bytes still unsent (the upstream answered early) would be read
        # by the upstream as the start of the next request.
        reusable = (
            self.complete
            and self._keep_alive
            and not self.closed
            and not self._held  # answered before it was asked: not to be trusted
            and not transport.get_write_buffer_size()
        )
        if self._paused and reusable:
            transport.resume_reading()
        self._reset()
        if reusable:
            self._home.put(self)
        else:
            self.abort()

    def abort(self) -> None:
        """Close now, unsent bytes dropped; the connection is never reused."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.idle:
            self.idle = False
            self._home.lost(self)
            return
        if not self._busy or self.complete:
            return
        if exc is None and self.head_done and self._ends_at_eof():
            self.complete = True  # a body delimited by the close (keep-alive off)
        elif self.error is None:
            self.error = UpstreamClosed(
                "the upstream closed the connection before the response was complete",
                sent=not self._held,
            )
        self._wake()

    def data_received(self, data: bytes) -> None:
        if not self._busy or self.complete:
            # Bytes when no response is due: the framing cannot be trusted any more.
            self.abort()
            return
        if not self.head_done:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
            return
        except httptools.HttpParserError as exc:
            if self.complete:  # trailing garbage after a whole response
                self.abort()
            elif data[:1] == b"\x15" and not self.head_done:
                self._fail(UpstreamProtocolError("the upstream speaks TLS; only http is used"))
            else:
                self._fail(UpstreamProtocolError(f"invalid response from the upstream: {exc}"))
            return
        if not self.head_done:
            if self._head_size > self._max_head:
                self._fail(UpstreamProtocolError("the upstream's response head is too large"))
        elif self._head_only and not self.complete:
            self._end_head_only()

    # -- httptools callbacks ----------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Unexpected

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.head_done:  # after the head come trailers: dropped, as proxies may
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self._head_size > self._max_head and self._head_bytes() > self._max_head:
            # Set first so that it wins over the parser error that raising causes.
            self.error = UpstreamProtocolError("the upstream's response head is too large")
            raise _Unexpected
        status = self._parser.get_status_code()
        if status < 200:
            # An interim answer (103 Early Hints, 100 Continue) precedes the real one.
            self._interim = True
            self.headers = []
            return
        self.status = status
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused:
            # The caller is behind: let TCP push back on the upstream.
            self._paused = True
            cast(asyncio.Transport, self._transport).pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    # -- internals ----------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self.abort()
        self._wake()

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done() or self.closed:
            return  # nobody waits: the next wait arms a timer again
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        message = f"no data from the upstream for {self._limit:g} s"
        self._fail(UpstreamTimeout(message, sent=True))

    def _end_head_only(self) -> None:
        # The parser does not know the request was HEAD and would wait for the body
        # that Content-Length announces: end the exchange at the head, and parse the
        # next one with a fresh parser.
        self._keep_alive = self._parser.should_keep_alive() and not self.chunks
        self.chunks = []
        self._buffered = 0
        self.complete = True
        self._parser = httptools.HttpResponseParser(self)
        self._wake()

    def _head_bytes(self) -> int:
        # Counted only when the bytes fed so far (head and maybe body) exceed the
        # limit, so the usual small head costs nothing here.
        return sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _ends_at_eof(self) -> bool:
        """Whether the body is delimited by the connection closing (RFC 9112 §6.3)."""
        if self._head_only or self.status in _NO_BODY_STATUS:
            return False
        names = {name for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names
