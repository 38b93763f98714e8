"""Idle keep-alive connections, per origin, most recently used first."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket

from gateway.proxy.connection import Connection
from gateway.proxy.settings import ClientSettings
from gateway.proxy.wire import host_header

__all__ = ["Origin", "Pool"]

Address = tuple[int, tuple[str, int] | tuple[str, int, int, int]]


class Origin:
    """One (host, port): its Host header, its address if literal, its idle list.

    The idle list is sorted by ``idle_since`` (appended when released, popped
    from the end when taken), so the oldest are at the front for the sweep, and
    reuse takes the warmest connection.
    """

    __slots__ = ("address", "host", "host_header", "idle", "key", "pool", "port")

    def __init__(self, pool: Pool, host: str, port: int) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.key = (host, port)
        self.host_header = host_header(host, port)
        self.idle: list[Connection] = []
        self.address: Address | None = None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass  # a name: resolved for each new connection
        else:
            self.address = (
                (socket.AF_INET, (host, port))
                if ip.version == 4
                else (socket.AF_INET6, (host, port, 0, 0))
            )

    def take(self, now: float) -> Connection | None:
        """A live idle connection, or None; dead and expired ones are closed."""
        idle = self.idle
        horizon = now - self.pool.settings.idle_timeout
        while idle:
            conn = idle.pop()
            conn.idle = False
            if conn.idle_since > horizon and conn.alive():
                return conn
            conn.abort()
        return None

    def put(self, conn: Connection) -> None:
        pool = self.pool
        if pool.closed or len(self.idle) >= pool.settings.max_idle_per_origin:
            conn.abort()
            return
        # The sweep drops origins left without idle connections; one in use
        # meanwhile comes back to this one (or, if a new one took its place, goes).
        if pool.origins.setdefault(self.key, self) is not self:
            conn.abort()
            return
        conn.idle = True
        conn.idle_since = pool.loop.time()
        self.idle.append(conn)
        if pool.sweeper is None:
            pool.arm_sweep()

    def lost(self, conn: Connection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Pool:
    """All origins of one client, and one timer that closes expired idle connections.

    An origin with no idle connection left after a sweep is dropped, so the
    addresses of instances long gone (churn) do not pile up.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.origins: dict[tuple[str, int], Origin] = {}
        self.closed = False
        self.sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def origin(self, origin: tuple[str, int]) -> Origin:
        home = self.origins.get(origin)
        if home is None:
            home = self.origins[origin] = Origin(self, *origin)
        return home

    def arm_sweep(self, at: float | None = None) -> None:
        # One timer for the whole pool rather than one per idle connection: no
        # timer work per request.
        when = self.loop.time() + self.settings.idle_timeout if at is None else at
        self.sweeper = self.loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        self.sweeper = None
        horizon = self.loop.time() - self.settings.idle_timeout
        oldest: float | None = None
        for home in self.origins.values():
            idle = home.idle
            expired = 0
            while expired < len(idle) and idle[expired].idle_since <= horizon:
                expired += 1
            for conn in idle[:expired]:
                conn.idle = False
                conn.abort()
            del idle[:expired]
            if idle and (oldest is None or idle[0].idle_since < oldest):
                oldest = idle[0].idle_since
        for key in [key for key, home in self.origins.items() if not home.idle]:
            del self.origins[key]
        if oldest is not None:
            self.arm_sweep(oldest + self.settings.idle_timeout)

    def close(self) -> None:
        """Close every idle connection; connections in use close when released."""
        self.closed = True
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        for home in self.origins.values():
            for conn in home.idle:
                conn.idle = False
                conn.abort()
            home.idle.clear()
