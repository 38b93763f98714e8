"""The response of an upstream: status and headers at once, the body as it arrives."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType

from gateway.proxy.connection import Connection
from gateway.proxy.errors import UpstreamBodyTooLarge
from gateway.proxy.wire import response_headers

__all__ = ["UpstreamResponse"]


class UpstreamResponse:
    """A response whose head has arrived. Read its body once (``stream`` or
    ``read``), then ``aclose`` it (or use ``async with``): a fully read response
    has already given its connection back to the pool; an unfinished one closes
    the connection, which is how a client that went away stops the upstream."""

    __slots__ = ("_conn", "_timeout", "complete", "headers", "status")

    def __init__(self, conn: Connection, timeout: float) -> None:
        self.status = conn.status
        #: Names lowercased, hop-by-hop headers removed; Content-Length kept.
        self.headers = response_headers(conn.headers)
        #: The whole body has been received and handed out.
        self.complete = False
        self._conn: Connection | None = conn
        self._timeout = timeout
        if conn.complete and not conn.chunks:  # no body (204, 304, HEAD, empty)
            self._release()

    def stream(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; chunks that arrived together come as one.

        Raises an ``UpstreamError`` if the upstream fails mid-body. Reading stops
        (TCP pushes back on the upstream) while the caller holds more than
        ``HIGH_WATER`` unread bytes.
        """
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        while conn is not None:
            if conn.chunks:
                data = conn.take()
                if conn.complete:
                    self._release()  # the caller need not come back for the end
                return data
            if conn.complete:
                self._release()
                break
            if conn.error is not None:
                self._conn = None
                conn.abort()
                raise conn.error
            try:
                await conn.wait(self._timeout)
            except BaseException:
                # Cancelled mid-body: the rest is unread, so the connection is spent.
                self._conn = None
                conn.abort()
                raise
        raise StopAsyncIteration

    def read_ready(self, max_bytes: int = 16 << 20) -> bytes | None:
        """The whole body if it has all arrived (the usual small answer), else None;
        as :meth:`read` would return it, without a coroutine."""
        conn = self._conn
        if conn is None or not conn.complete or conn.error is not None:
            return None
        data = conn.take()
        self._release()
        if len(data) > max_bytes:
            raise UpstreamBodyTooLarge(f"response body larger than {max_bytes} bytes")
        return data

    async def read(self, max_bytes: int = 16 << 20) -> bytes:
        """The whole body; ``UpstreamBodyTooLarge`` (connection closed) past ``max_bytes``."""
        conn = self._conn
        if conn is not None and conn.complete and conn.error is None:
            # The whole body came with the head (the usual small answer): no
            # iterator round trips.
            data = conn.take()
            self._release()
            if len(data) > max_bytes:
                raise UpstreamBodyTooLarge(f"response body larger than {max_bytes} bytes")
            return data
        parts: list[bytes] = []
        size = 0
        async for chunk in self:
            size += len(chunk)
            if size > max_bytes:
                await self.aclose()
                raise UpstreamBodyTooLarge(f"response body larger than {max_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        """Done with the response: reuse its connection if the upstream finished
        sending (unread bytes are dropped), close it otherwise."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            if conn.complete:
                conn.release()
            else:
                conn.abort()

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Dropped unfinished (an exception between request() and aclose()): close
        # the connection rather than leave it busy, maybe paused, until the
        # upstream gives up on it. Synchronous, so safe outside the event loop.
        conn = self._conn
        if conn is not None:
            self._conn = None
            with contextlib.suppress(RuntimeError):  # the event loop is already closed
                conn.abort()

    def _release(self) -> None:
        conn = self._conn
        assert conn is not None
        self._conn = None
        self.complete = True
        conn.release()

    def __repr__(self) -> str:
        return f"<UpstreamResponse {self.status}{' complete' if self.complete else ''}>"
