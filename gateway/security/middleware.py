"""The ASGI middleware that puts every request on its canonical path and authenticates it.

Order of work, identical for every path variant:

1. Normalise ``raw_path``; a refused path is answered 400 before anything
   else (so the answer says nothing about what exists).
2. Rewrite ``scope["path"]``/``scope["raw_path"]`` to the canonical form, so
   routing sees exactly what authentication saw.
3. Strip the caller's credentials (``authorization``, ``x-api-key``,
   ``cookie``, ``proxy-authorization``) from the headers, always, so the core
   cannot forward them upstream.
4. Public paths (exact canonical matches) run as :data:`ANONYMOUS`; every other
   path must authenticate, whether or not anything is routed there (401 for
   an unknown agent as for a known one).
5. ``scope["state"]["principal"]`` holds the :class:`Principal`.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import BadRequest, GatewayError, Unauthorized, is_jsonrpc_route, send_error
from gateway.security.authenticator import Authenticator
from gateway.security.paths import encode_path, normalize_path
from gateway.security.settings import ANONYMOUS

__all__ = ["STRIPPED_HEADERS", "AuthMiddleware", "authenticate", "strip_credentials"]

#: Request headers never passed to the app behind this middleware.
STRIPPED_HEADERS = frozenset((b"authorization", b"x-api-key", b"cookie", b"proxy-authorization"))
_AUTHORIZATION = b"authorization"
_API_KEY = b"x-api-key"


class AuthMiddleware:
    """Canonical paths, authentication and credential stripping for ``http``/``websocket``."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        *,
        jsonrpc_route: Callable[[str, str], bool] = is_jsonrpc_route,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self._jsonrpc_route = jsonrpc_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path")
        if not raw:
            raw = quote(scope["path"], safe="/").encode("ascii")
        target = raw.partition(b"?")[0]
        path = normalize_path(target)
        if path is None:
            await self._refuse(scope, send, BadRequest("the request path is not acceptable"))
            return
        credentials = strip_credentials(scope, path, target)
        try:
            await authenticate(scope, self.authenticator, credentials)
        except Unauthorized as error:
            await self._refuse(scope, send, error)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, error: GatewayError) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope.get("path", "")
        await send_error(send, error, jsonrpc=self._jsonrpc_route(scope["method"], path))


Credentials = tuple[bytes | None, bytes | None, bool]


def strip_credentials(scope: Scope, path: str, target: bytes) -> Credentials:
    """Put ``scope`` on its canonical ``path`` without the caller's credentials.

    ``target`` is the raw path (no query) that ``path`` was normalised from.
    Returns the Authorization and X-API-Key values and whether either came twice.
    """
    # One pass: keep what may go on, pick up the credentials.
    kept: list[tuple[bytes, bytes]] = []
    authorization: bytes | None = None
    api_key: bytes | None = None
    duplicate = False
    for header in scope["headers"]:
        name = header[0].lower()
        if name in STRIPPED_HEADERS:
            if name == _AUTHORIZATION:
                duplicate |= authorization is not None
                authorization = header[1]
            elif name == _API_KEY:
                duplicate |= api_key is not None
                api_key = header[1]
        else:
            kept.append(header)
    scope["headers"] = kept
    scope["path"] = path
    if not (target.isascii() and path == target.decode("ascii")):
        target = encode_path(path).encode("ascii")
    scope["raw_path"] = target
    return authorization, api_key, duplicate


async def authenticate(
    scope: Scope, authenticator: Authenticator, credentials: Credentials
) -> None:
    """Set ``scope["state"]["principal"]`` for the canonical path; raises Unauthorized."""
    path: str = scope["path"]
    if authenticator.is_public(path):
        principal = ANONYMOUS
    else:
        authorization, api_key, duplicate = credentials
        if duplicate:
            raise Unauthorized(error="invalid_request")
        principal = await authenticator.authenticate_credentials(authorization, api_key)
    state = scope.get("state")
    if state is None:
        scope["state"] = {"principal": principal}
    else:
        state["principal"] = principal
