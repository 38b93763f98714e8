"""The upstream HTTP/1.1 client of the gateway's hot path.

Plain http only: an origin is ``(host, port)`` with no scheme, so TLS to
upstreams would need a per-origin SSL context (not supported; an upstream that
answers with TLS fails with a clear ``UpstreamProtocolError``). Mesh traffic is
plain HTTP inside the cluster (DESIGN.md §5).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence

from gateway.proxy.connection import Connection
from gateway.proxy.errors import UpstreamClosed, UpstreamConnectError, UpstreamTimeout
from gateway.proxy.pool import Address, Origin, Pool
from gateway.proxy.response import UpstreamResponse
from gateway.proxy.settings import ClientSettings
from gateway.proxy.wire import encode_head

__all__ = ["AddressCheck", "UpstreamClient"]

#: Why an address must not be connected to, or None if it may.
AddressCheck = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], str | None]


class UpstreamClient:
    """Pooled keep-alive HTTP/1.1 connections to any number of origins.

    One request per connection at a time (no pipelining). Use it from one event
    loop; ``aclose`` it when done.
    """

    def __init__(
        self,
        settings: ClientSettings = ClientSettings(),  # noqa: B008
        *,
        refuse_address: AddressCheck | None = None,
    ) -> None:
        """``refuse_address(ip)``: why a name's resolved address must not be
        connected to (None: it may). Checked at each connect, after the name is
        resolved: a name that resolved to an allowed address when it was
        registered may resolve to another one now (DNS rebinding)."""
        self.settings = settings
        self._pool = Pool(settings)
        self._refuse_address = refuse_address

    async def request(
        self,
        origin: tuple[str, int],
        method: bytes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        read_timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send a request and return once the response head has arrived.

        Writes Host (from ``origin``; the caller's is dropped) and Content-Length,
        then ``headers`` (hop-by-hop ones and credentials already removed by the
        caller). An idle connection found dead before anything was written is
        replaced by a fresh one, transparently: nothing was sent. Raises an
        ``UpstreamError`` whose ``sent`` says whether a retry is safe.
        """
        pool = self._pool
        if pool.closed:
            raise RuntimeError("UpstreamClient is closed")
        home = pool.origins.get(origin) or pool.origin(origin)
        head = encode_head(method, target, home.host_header, headers, len(body))
        timeout = self.settings.read_timeout if read_timeout is None else read_timeout
        head_only = method == b"HEAD"
        loop = pool.loop
        conn = home.take(loop.time())
        if conn is None or not conn.send(head, body, head_only=head_only):
            if conn is not None:
                conn.abort()
            conn = await self._connect(home)
            if not conn.send(head, body, head_only=head_only):
                conn.abort()
                raise UpstreamClosed(f"{home} closed a new connection at once", sent=False)
        try:
            deadline = loop.time() + timeout
            while not conn.head_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(max(deadline - loop.time(), 0.0))
        except BaseException:
            conn.abort()
            raise
        return UpstreamResponse(conn, timeout)

    async def aclose(self) -> None:
        """Close idle connections; responses still being read close theirs when done."""
        self._pool.close()

    async def _connect(self, home: Origin) -> Connection:
        limit = self.settings.connect_timeout
        try:
            async with asyncio.timeout(limit):
                return await self._open(home)
        except TimeoutError as exc:
            message = f"connecting to {home} took over {limit:g} s"
            raise UpstreamTimeout(message, sent=False) from exc

    async def _open(self, home: Origin) -> Connection:
        error: OSError | None = None
        for family, address in await self._resolve(home):
            try:
                return await self._attempt(home, family, address)
            except OSError as exc:
                error = exc
        raise UpstreamConnectError(f"cannot connect to {home}: {error}")

    async def _attempt(
        self, home: Origin, family: int, address: tuple[str, int] | tuple[str, int, int, int]
    ) -> Connection:
        loop = self._pool.loop
        # Our own socket object, kept by the connection to poll before reuse.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setblocking(False)
            # Small requests and answers must not wait for Nagle's ACK (~40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
            conn = Connection(home, sock, self.settings.max_response_head)
            await loop.create_connection(lambda: conn, sock=sock)
        except BaseException:
            sock.close()  # a no-op if the transport took it and closed it already
            raise
        return conn

    async def _resolve(self, home: Origin) -> list[Address]:
        if home.address is not None:
            addresses = [home.address]
        else:
            try:
                infos = await self._pool.loop.getaddrinfo(
                    home.host, home.port, type=socket.SOCK_STREAM
                )
            except socket.gaierror as exc:
                raise UpstreamConnectError(f"cannot resolve {home.host}: {exc}") from exc
            addresses = [(info[0], info[4]) for info in infos]  # type: ignore[misc]
        refuse = self._refuse_address
        if refuse is not None:
            for _, address in addresses:
                reason = refuse(ipaddress.ip_address(address[0]))
                if reason is not None:
                    # One refused address refuses the name: which one a connect
                    # reaches is the resolver's choice, not ours.
                    raise UpstreamConnectError(
                        f"{home.host} resolves to {address[0]}, which is refused: {reason}"
                    )
        return addresses
