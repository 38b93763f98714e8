"""The gateway's error family: one table, two renderings, nothing leaked."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import errors
from gateway.errors import (
    ERROR_TABLE,
    GatewayError,
    NotFound,
    Overloaded,
    RateLimited,
    Unauthorized,
    handle_exception,
    is_jsonrpc_route,
    jsonrpc_error,
    jsonrpc_response,
    problem_response,
)

pytestmark = pytest.mark.anyio

FAMILY = [
    cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, GatewayError)
]
#: JSON-RPC codes A2A (1.0) gives meanings to; the gateway must never send them.
A2A_CODES = set(range(-32009, -32000))


def test_every_error_is_in_the_one_table() -> None:
    assert {cls.code for cls in FAMILY} == set(ERROR_TABLE)
    statuses = {cls.code: cls().status for cls in FAMILY}
    assert statuses == {
        "bad-request": 400, "parse-error": 400, "unauthorized": 401, "forbidden": 403,
        "not-found": 404,
        "misdirected": 421, "payload-too-large": 413, "rate-limited": 429,
        "upstream-unavailable": 502, "overloaded": 503, "no-healthy-upstream": 503,
        "upstream-timeout": 504, "internal": 500,
    }  # fmt: skip


def test_json_rpc_codes_stay_clear_of_the_protocols_own() -> None:
    for status, code in ERROR_TABLE.values():
        assert code not in A2A_CODES
        assert code in (-32700, -32600, -32603) or not -32768 <= code <= -32000
        if code not in (-32700, -32600, -32603):
            assert code == -31000 - status


def test_problem_details_with_retry_after() -> None:
    status, headers, body = problem_response(Overloaded(retry_after=2.1))
    assert status == 503
    assert dict(headers) == {
        b"content-type": b"application/problem+json",
        b"content-length": str(len(body)).encode(),
        b"cache-control": b"no-store",
        b"retry-after": b"3",
    }
    assert json.loads(body) == {
        "type": "urn:meshgate:error:overloaded",
        "title": "Overloaded",
        "status": 503,
        "detail": "the gateway is at capacity",
        "retry_after": 3,
    }
    assert dict(problem_response(RateLimited(retry_after=0.01))[1])[b"retry-after"] == b"1"


def test_only_401_carries_a_challenge() -> None:
    for cls in FAMILY:
        names = {name for name, _ in problem_response(cls())[1]}
        assert (b"www-authenticate" in names) == (cls is Unauthorized)


def test_not_found_says_the_same_whatever_the_reason() -> None:
    assert problem_response(NotFound()) == problem_response(NotFound())
    assert NotFound().detail == "no such resource"


def test_json_rpc_errors_keep_the_status_and_the_request_id() -> None:
    body = json.loads(jsonrpc_error(RateLimited(retry_after=5), "req-7"))
    assert body == {
        "jsonrpc": "2.0",
        "id": "req-7",
        "error": {
            "code": -31429,
            "message": "the rate limit of this caller is exhausted",
            "data": {"type": "urn:meshgate:error:rate-limited", "status": 429, "retry_after": 5},
        },
    }
    status, headers, _ = jsonrpc_response(Unauthorized(error="invalid_token"))
    assert status == 401
    assert dict(headers)[b"content-type"] == b"application/json"
    assert dict(headers)[b"www-authenticate"] == b'Bearer realm="meshgate", error="invalid_token"'


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/mcp", True),
        ("POST", "/a2a/researcher", True),
        ("POST", "/a2a/skills/search", True),
        ("GET", "/a2a/researcher", False),
        ("POST", "/a2a/researcher/message:send", False),
        ("POST", "/a2a/researcher/.well-known/agent-card.json", False),
        ("POST", "/v1/invoke/researcher", False),
        ("POST", "/a2a", False),
    ],
)
def test_json_rpc_routes(method: str, path: str, expected: bool) -> None:
    assert is_jsonrpc_route(method, path) is expected


async def test_the_starlette_handler_never_leaks_an_unexpected_exception() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret: /etc/meshgate/keys.toml")

    async def gone(request: Request) -> Response:
        raise NotFound()

    app = Starlette(
        routes=[Route("/v1/boom", boom), Route("/mcp", gone, methods=["POST"])],
        exception_handlers={GatewayError: handle_exception, Exception: handle_exception},
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        crashed = await client.get("/v1/boom")
        missing = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "x"})
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert "secret" not in crashed.text
    assert "Traceback" not in crashed.text
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == -31404
