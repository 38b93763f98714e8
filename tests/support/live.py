"""Serve an ASGI app on a real loopback socket for tests that need one."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import uvicorn


class _InProcessServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone.

    sse-starlette ends every SSE stream of the process once the uvicorn server
    owning the SIGTERM handler has ``should_exit`` set. With several servers in
    one test process, stopping one (a tool server) then cut the gateway's
    session streams, and ``list_changed`` sent meanwhile was lost.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Any, *, port: int = 0, lifespan: str = "on") -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in this event loop; yield its base URL.

    Startup is awaited by polling ``server.started`` with a deadline, never by
    sleeping a fixed time; the server is stopped and its task joined on exit.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only
    # when the listener says so, and without it every response stalls ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", timeout_graceful_shutdown=2
    )
    server = _InProcessServer(config)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                if server.should_exit:
                    raise RuntimeError("server exited during startup")
                await anyio.sleep(0.005)
        try:
            yield url
        finally:
            server.should_exit = True
    sock.close()
