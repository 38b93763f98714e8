"""Request body size limit, as a pure ASGI middleware.

A ``Content-Length`` over the limit is answered 413 at once, before a byte of
the body is read; a valid one within it passes with no wrapping (the server
holds the body to its declared length). A body without a length (chunked) is
counted as it streams: at the limit the caller gets 413 if no response has
started, and the app sees ``http.disconnect``, as if the client had gone, so a
proxy stops forwarding; whatever the app sends afterwards is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BadRequest, PayloadTooLarge, is_jsonrpc_route, send_error

__all__ = ["BodyLimitMiddleware"]

log = logging.getLogger(__name__)
_DISCONNECT: Message = {"type": "http.disconnect"}


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``max_bytes``."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        jsonrpc_route: Callable[[str, str], bool] = is_jsonrpc_route,
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes
        self._jsonrpc_route = jsonrpc_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
                break
        jsonrpc = self._jsonrpc_route(scope["method"], scope["path"])
        if length is not None:
            if not length.isdigit():
                await send_error(send, BadRequest("bad Content-Length"), jsonrpc=jsonrpc)
            elif int(length) > self.max_bytes:
                await send_error(send, PayloadTooLarge(), jsonrpc=jsonrpc)
            else:
                await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, jsonrpc)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, jsonrpc: bool) -> None:
        received = 0
        started = responded = cut = False

        async def limited_receive() -> Message:
            nonlocal received, responded, cut
            if cut:
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    cut = True
                    if not started:
                        responded = True
                        await send_error(send, PayloadTooLarge(), jsonrpc=jsonrpc)
                    return _DISCONNECT
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if responded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not cut:
                raise
            # The app failed on the disconnect it was shown (the body was cut).
            log.debug("app raised after a body was cut at the limit", exc_info=True)
