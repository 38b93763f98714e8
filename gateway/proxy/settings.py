"""Timeouts and pool limits of the upstream client."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientSettings"]


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Limits of one ``UpstreamClient``; seconds and bytes."""

    #: Resolving the name and completing the TCP handshake.
    connect_timeout: float = 2.0
    #: Until the response head, and then between body chunks while the caller
    #: waits for one (a caller that is slow to read does not time out).
    read_timeout: float = 30.0
    #: Idle keep-alive connections kept per (host, port); more are closed.
    max_idle_per_origin: int = 64
    #: An idle connection older than this is closed rather than reused. Shorter
    #: than the upstreams' own keep-alive timeout (uvicorn's default, and every
    #: Meshgate process's: 5 s), so that the gateway, not the upstream, closes an
    #: idle connection: an upstream's close that crosses a request on the wire
    #: fails that request, and a request that may have been read is not retried.
    #: The check before reuse covers upstreams with a shorter timeout.
    idle_timeout: float = 4.0
    #: Largest status line plus headers accepted from an upstream.
    max_response_head: int = 65536

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.max_idle_per_origin < 0 or self.max_response_head < 1024:
            raise ValueError("max_idle_per_origin >= 0 and max_response_head >= 1024")
