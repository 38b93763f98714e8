"""The gateway's upstream HTTP/1.1 client: pooled keep-alive connections on
``asyncio.Protocol`` and ``httptools``, built for forwarding bytes cheaply.

``UpstreamClient.request`` returns an ``UpstreamResponse`` once the head has
arrived; its body streams unbuffered (SSE passes through event by event).
Errors are ``UpstreamError`` subclasses whose ``sent`` says whether a retry is
safe. See DESIGN.md §5 "Hot path" for why this is not aiohttp or httpx.
"""

from gateway.proxy.client import UpstreamClient
from gateway.proxy.errors import (
    UpstreamBodyTooLarge,
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.proxy.response import UpstreamResponse
from gateway.proxy.settings import ClientSettings

__all__ = [
    "ClientSettings",
    "UpstreamBodyTooLarge",
    "UpstreamClient",
    "UpstreamClosed",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
]
