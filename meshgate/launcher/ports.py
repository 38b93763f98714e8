"""Local ports: free ones for ``"auto"``, and whether a fixed one is taken."""

from __future__ import annotations

import errno
import socket

__all__ = ["HOST", "PortAllocator", "accepts_connections", "port_in_use"]

#: Every component of a local mesh binds here, and only here.
HOST = "127.0.0.1"


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether binding ``host:port`` would fail the way a server's bind would.

    SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT is free, a listener is not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def accepts_connections(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something listens on ``host:port`` (a connect attempt)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class PortAllocator:
    """Free ports chosen by the kernel, never the same one twice in one launch."""

    def __init__(self, reserved: set[int] | None = None, host: str = HOST) -> None:
        self._taken = set(reserved or ())
        self._host = host

    def allocate(self) -> int:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((self._host, 0))
                port = int(sock.getsockname()[1])
            if port not in self._taken:
                self._taken.add(port)
                return port
        raise RuntimeError("no free port left")  # pragma: no cover
