"""A TCP listener that only counts who connects: nothing may ever reach it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["Canary", "canary"]


@dataclass
class Canary:
    #: ``(host, port)`` it listens on.
    addresses: list[tuple[str, int]] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def canary(hosts: tuple[str, ...] = ("127.0.0.2",)) -> AsyncIterator[Canary]:
    """Listen on an ephemeral port of each of ``hosts``; count and drop every connection."""
    seen = Canary()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections.append(writer.get_extra_info("sockname"))
        writer.close()

    servers = []
    try:
        for host in hosts:
            server = await asyncio.start_server(accepted, host, 0)
            servers.append(server)
            seen.addresses.append(server.sockets[0].getsockname()[:2])
        yield seen
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
