"""AuthMiddleware details that the socket matrix does not reach."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.security import Authenticator, AuthMiddleware, AuthSettings
from tests.gateway.security import tokens
from tests.gateway.security.asgi import Recorder, call, http_scope

pytestmark = pytest.mark.anyio

KEY = (b"X-Api-Key", tokens.API_KEY.encode())


def middleware(app: Any) -> AuthMiddleware:
    return AuthMiddleware(app, Authenticator(AuthSettings(api_keys=(tokens.API_KEY,))))


async def test_credentials_are_stripped_whatever_the_header_case() -> None:
    app = Recorder()
    headers = [KEY, (b"Cookie", b"a=b"), (b"PROXY-AUTHORIZATION", b"x"), (b"accept", b"*/*")]
    result = await call(middleware(app), http_scope("/v1/agents", headers=headers))
    assert result.status == 200
    assert app.scopes[0]["headers"] == [(b"accept", b"*/*")]
    assert app.scopes[0]["state"]["principal"].kind == "api-key"


async def test_the_scope_carries_the_canonical_path_and_its_encoding() -> None:
    app = Recorder()
    scope = http_scope(headers=[KEY])
    scope["raw_path"] = b"/a2a//caf%C3%A9/./x/"
    scope["path"] = "/a2a//café/./x/"
    await call(middleware(app), scope)
    assert app.scopes[0]["path"] == "/a2a/café/x"
    assert app.scopes[0]["raw_path"] == b"/a2a/caf%C3%A9/x"


async def test_a_scope_without_raw_path_or_state_still_works() -> None:
    app = Recorder()
    scope = http_scope("/healthz/")
    del scope["raw_path"], scope["state"]
    await call(middleware(app), scope)
    assert app.scopes[0]["path"] == "/healthz"
    assert app.scopes[0]["state"]["principal"].kind == "anonymous"


async def test_json_rpc_routes_get_a_json_rpc_401() -> None:
    app = Recorder()
    result = await call(middleware(app), http_scope("/mcp", "POST"))
    assert result.status == 401
    assert result.headers[b"content-type"] == b"application/json"
    assert result.headers[b"www-authenticate"] == b'Bearer realm="meshgate"'
    body = result.json()
    assert body["id"] is None
    assert body["error"]["code"] == -31401
    assert not app.scopes


async def test_other_routes_get_problem_details_and_refused_paths_400() -> None:
    result = await call(middleware(Recorder()), http_scope("/v1/agents"))
    assert result.status == 401
    assert result.headers[b"content-type"] == b"application/problem+json"
    scope = http_scope()
    scope["raw_path"] = b"/a%2fb"
    result = await call(middleware(Recorder()), scope)
    assert result.status == 400
    assert result.json()["type"] == "urn:meshgate:error:bad-request"


async def test_websockets_are_refused_the_same_way_and_lifespan_passes() -> None:
    app = Recorder()
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    scope = http_scope("/a2a/x") | {"type": "websocket"}
    await middleware(app)(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    await middleware(app)({"type": "lifespan"}, receive, send)
    assert app.scopes == [{"type": "lifespan"}]
