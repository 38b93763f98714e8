"""Errors of the upstream client; ``sent`` tells the caller whether a retry is safe."""

from __future__ import annotations

__all__ = [
    "UpstreamBodyTooLarge",
    "UpstreamClosed",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeout",
]


class UpstreamError(Exception):
    """A request to an upstream failed.

    ``sent`` is False only when the request provably did not reach the upstream
    (the connection failed, or was found dead before any byte was written): only
    then may a non-idempotent request be retried elsewhere.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class UpstreamConnectError(UpstreamError):
    """The connection could not be made (refused, unreachable, name not resolved)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class UpstreamTimeout(UpstreamError):
    """Connect timeout (``sent=False``) or read timeout (``sent=True``)."""


class UpstreamClosed(UpstreamError):
    """The upstream closed or reset the connection before the response was complete."""


class UpstreamProtocolError(UpstreamError):
    """The upstream's answer is not valid HTTP/1.1, or its head is too large."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=True)


class UpstreamBodyTooLarge(UpstreamError):
    """``UpstreamResponse.read`` met more than ``max_bytes`` of body."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=True)
