"""Upstreams for the client's tests: real sockets on 127.0.0.1.

``RawServer`` runs a handler per connection on ``asyncio.start_server``, for
upstreams that misbehave on purpose (close mid-body, never answer, send
garbage, drop idle keep-alive connections). It counts connections and keeps
an event per disconnect, so tests wait on what the server saw, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[["Peer"], Awaitable[None]]


@dataclass
class Request:
    head: bytes
    body: bytes

    @property
    def headers(self) -> dict[bytes, bytes]:
        lines = self.head.split(b"\r\n")[1:]
        pairs = [line.split(b":", 1) for line in lines if line]
        return {name.strip().lower(): value.strip() for name, value in pairs}

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]


@dataclass
class Peer:
    """One accepted connection, as the handler sees it."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    #: Set when the client's side of this connection has closed (EOF or reset).
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_request(self, *, body: bool = True) -> Request:
        head = await self.reader.readuntil(b"\r\n\r\n")
        request = Request(head, b"")
        length = int(request.headers.get(b"content-length", b"0"))
        if body and length:
            request.body = await self.reader.readexactly(length)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_gone(self) -> None:
        """Until the client closes this connection (reading and dropping its bytes)."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass
        self.gone.set()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class RawServer:
    """``handler(peer)`` for each connection; ``peers`` in accept order."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.peers: list[Peer] = []
        self.accepted = asyncio.Condition()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def origin(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(len(self.peers), reader, writer)
        self.peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        async with self.accepted:
            self.accepted.notify_all()
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Torn down by __aexit__. Swallowed: asyncio's stream server asks a
            # finished handler task for its exception, which raises if cancelled.
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def peer(self, index: int) -> Peer:
        """The ``index``-th connection, once accepted."""
        async with self.accepted:
            await self.accepted.wait_for(lambda: len(self.peers) > index)
        return self.peers[index]

    async def __aenter__(self) -> RawServer:
        # IPPROTO_TCP explicitly, so asyncio sets TCP_NODELAY on accepted sockets.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop listening (connecting is refused from now on) and end every connection."""
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    async with RawServer(handler) as server:
        yield server


def response(body: bytes = b"ok", *, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    """A keep-alive HTTP/1.1 response with Content-Length."""
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\n" % len(body) + headers + b"\r\n" + body
    )


async def keep_alive(peer: Peer) -> None:
    """Answer every request on the connection with ``ok``, until the client leaves."""
    while True:
        try:
            await peer.read_request()
        except asyncio.IncompleteReadError:
            return
        await peer.send(response())
