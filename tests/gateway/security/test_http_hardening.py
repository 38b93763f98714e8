"""Security headers, CORS and the request body limit."""

from __future__ import annotations

import pytest
from starlette.types import Receive, Scope, Send

from gateway.security import (
    BodyLimitMiddleware,
    CorsSettings,
    HeaderSettings,
    SecurityHeadersMiddleware,
)
from tests.gateway.security.asgi import Recorder, call, http_scope

pytestmark = pytest.mark.anyio

ORIGIN = b"https://app.example"
CORS = CorsSettings(allow_origins=(ORIGIN.decode(),))


def hardened(app: Recorder, cors: CorsSettings = CORS) -> SecurityHeadersMiddleware:
    return SecurityHeadersMiddleware(app, HeaderSettings(cors=cors))


async def test_every_response_gets_security_headers_and_a_strict_csp() -> None:
    result = await call(hardened(Recorder()), http_scope("/v1/agents"))
    headers = result.headers
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"content-security-policy"] == b"default-src 'none'; frame-ancestors 'none'"
    assert b"access-control-allow-origin" not in headers  # no Origin, no CORS
    assert b"strict-transport-security" not in headers


async def test_ui_and_docs_get_their_own_csp_and_the_apps_own_headers_win() -> None:
    ui = await call(hardened(Recorder()), http_scope("/ui/agents"))
    assert b"script-src 'self'" in ui.headers[b"content-security-policy"]
    own = Recorder([(b"Content-Security-Policy", b"default-src 'self' 'nonce-x'")])
    result = await call(hardened(own), http_scope("/docs"))
    csp = [v for k, v in result.sent[0]["headers"] if k.lower() == b"content-security-policy"]
    assert csp == [b"default-src 'self' 'nonce-x'"]


async def test_cors_allows_listed_origins_only_and_drops_upstream_cors_headers() -> None:
    upstream = Recorder([(b"access-control-allow-origin", b"*")])
    allowed = await call(hardened(upstream), http_scope(headers=[(b"origin", ORIGIN)]))
    assert allowed.headers[b"access-control-allow-origin"] == ORIGIN
    assert b"retry-after" in allowed.headers[b"access-control-expose-headers"]
    other = await call(hardened(upstream), http_scope(headers=[(b"origin", b"https://evil")]))
    assert b"access-control-allow-origin" not in other.headers


def preflight(origin: bytes, method: bytes = b"POST", headers: bytes = b"") -> dict[str, object]:
    return http_scope(
        "/mcp",
        "OPTIONS",
        [
            (b"origin", origin),
            (b"access-control-request-method", method),
            (b"access-control-request-headers", headers),
        ],
    )


async def test_preflights_are_answered_without_reaching_the_app() -> None:
    app = Recorder()
    ok = await call(hardened(app), preflight(ORIGIN, headers=b"Authorization, MCP-Session-Id"))
    assert ok.status == 204
    assert ok.headers[b"access-control-allow-origin"] == ORIGIN
    assert b"POST" in ok.headers[b"access-control-allow-methods"]
    assert ok.headers[b"access-control-max-age"] == b"600"
    for refused in (
        preflight(b"https://evil"),
        preflight(ORIGIN, method=b"PATCH"),
        preflight(ORIGIN, headers=b"x-not-allowed"),
    ):
        result = await call(hardened(app), refused)
        assert result.status == 403
        assert b"access-control-allow-origin" not in result.headers
        assert result.headers[b"x-content-type-options"] == b"nosniff"
    assert not app.scopes


async def test_any_origin_and_credentials_do_not_mix() -> None:
    star = await call(
        hardened(Recorder(), CorsSettings(allow_origins=("*",))),
        http_scope(headers=[(b"origin", b"https://x")]),
    )
    assert star.headers[b"access-control-allow-origin"] == b"*"
    with pytest.raises(ValueError, match="credentials"):
        CorsSettings(allow_origins=("*",), allow_credentials=True)


def sized(path: str, length: bytes | None) -> dict[str, object]:
    headers = [] if length is None else [(b"content-length", length)]
    return http_scope(path, "POST", headers)


async def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    app = Recorder()
    limited = BodyLimitMiddleware(app, max_bytes=10)
    result = await call(limited, sized("/v1/invoke/x", b"11"), [b"x" * 11])
    assert result.status == 413
    assert result.json()["type"] == "urn:meshgate:error:payload-too-large"
    rpc = await call(limited, sized("/mcp", b"11"), [b"x" * 11])
    assert rpc.json()["error"]["code"] == -31413
    assert (await call(limited, sized("/mcp", b"1x"))).status == 400
    assert not app.scopes
    assert (await call(limited, sized("/mcp", b"10"), [b"x" * 10])).status == 200


async def test_a_streamed_body_is_cut_at_the_limit() -> None:
    app = Recorder()
    limited = BodyLimitMiddleware(app, max_bytes=10)
    result = await call(limited, sized("/v1/invoke/x", None), [b"x" * 6, b"y" * 6, b"z" * 6])
    assert result.status == 413
    assert len(result.sent) == 2  # the app's own answer was dropped
    assert [m["type"] for m in app.received] == ["http.request", "http.disconnect"]
    within = await call(limited, sized("/v1/invoke/x", None), [b"x" * 5, b"y" * 5])
    assert within.status == 200


async def test_a_body_over_the_limit_after_the_response_started_is_cut() -> None:
    sent_before: list[str] = []

    async def streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            sent_before.append(message["type"])
            if message["type"] == "http.disconnect":
                raise OSError("client went away")

    limited = BodyLimitMiddleware(streaming_app, max_bytes=4)
    result = await call(limited, sized("/v1/stream/x", None), [b"abc", b"defg", b"h"])
    assert result.status == 200
    assert sent_before == ["http.request", "http.disconnect"]
