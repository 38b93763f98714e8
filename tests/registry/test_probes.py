"""The registry's active probes against real peers on real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.models import CheckSpec, Health, Instance, Kind
from registry.probes import MCP_HANDSHAKE_VERSION, MCP_MODERN_VERSION, ProbeResult, probe
from tests.support.live import free_port, serve
from tests.support.peers import (
    a2a_agent_app,
    agent_card,
    mcp_server_app,
    running_a2a_agent,
    running_mcp_server,
)

pytestmark = pytest.mark.anyio

CARD_PATH = "/.well-known/agent-card.json"


def instance(kind: Kind, url: str, timeout: float = 5.0) -> Instance:
    return Instance(
        service="peer",
        id="peer-1",
        kind=kind,
        url=url,
        health=Health.PASSING,
        check=CheckSpec(timeout_seconds=timeout),
        create_index=1,
        modify_index=1,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def probe_a2a(http: httpx.AsyncClient, url: str, seconds: float = 5.0) -> ProbeResult:
    return await probe(http, instance(Kind.A2A_AGENT, url, seconds))


# --- A2A ---------------------------------------------------------------------------------


async def test_a2a_probe_passes_against_a_real_agent(http: httpx.AsyncClient) -> None:
    async with running_a2a_agent() as url:
        result = await probe_a2a(http, url)
    assert result == ProbeResult(True, "A2A JSON-RPC answered (TaskNotFoundError)")


async def test_a2a_probe_keeps_to_the_instance_when_the_card_points_elsewhere(
    http: httpx.AsyncClient,
) -> None:
    # A real agent whose card advertises a host the registry never validated.
    async with serve(a2a_agent_app(base_url="http://192.0.2.1:9")) as url:
        result = await probe_a2a(http, url)
    assert result.ok
    assert "TaskNotFoundError" in result.output
    assert "probed the instance URL" in result.output


async def test_a2a_probe_fails_on_a_closed_port(http: httpx.AsyncClient) -> None:
    result = await probe_a2a(http, f"http://127.0.0.1:{free_port()}")
    assert result == ProbeResult(False, "connect refused")


async def _card_500(request: Request) -> Response:
    return Response("boom", status_code=500)


async def _card_html(request: Request) -> Response:
    return HTMLResponse("<html><body>Welcome to nginx!</body></html>")


async def _card_redirect(request: Request) -> Response:
    return RedirectResponse("/elsewhere.json", status_code=307)


async def _card_nameless(request: Request) -> Response:
    return JSONResponse({"description": "no name"})


@pytest.mark.parametrize(
    ("endpoint", "output"),
    [
        (_card_500, "HTTP 500 from card"),
        (_card_html, "card is not JSON"),
        (_card_redirect, "HTTP 307 from card"),
        (_card_nameless, "card has no name"),
    ],
)
async def test_a2a_probe_fails_on_a_broken_card(
    http: httpx.AsyncClient, endpoint: Any, output: str
) -> None:
    async with serve(Starlette(routes=[Route(CARD_PATH, endpoint)])) as url:
        result = await probe_a2a(http, url)
    assert result == ProbeResult(False, output)


def refusing_agent(port: int, code: int, message: str) -> Starlette:
    """A valid card whose JSON-RPC endpoint refuses every call with ``code``."""
    card = agent_card("refuser", f"http://127.0.0.1:{port}/")

    async def card_endpoint(request: Request) -> Response:
        return JSONResponse(card)

    async def rpc(request: Request) -> Response:
        body = await request.json()
        error = {"code": code, "message": message}
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "error": error})

    return Starlette(routes=[Route(CARD_PATH, card_endpoint), Route("/", rpc, methods=["POST"])])


@pytest.mark.parametrize(
    ("code", "message", "output"),
    [
        (-32601, "Method not found", "-32601 method not found"),
        (-32009, "Version not supported", "-32009 version not supported"),
    ],
)
async def test_a2a_probe_fails_when_json_rpc_refuses_the_call(
    http: httpx.AsyncClient, code: int, message: str, output: str
) -> None:
    port = free_port()
    async with serve(refusing_agent(port, code, message), port=port) as url:
        result = await probe_a2a(http, url)
    assert result == ProbeResult(False, f"A2A JSON-RPC refused the probe: {output}")


async def test_a2a_probe_gives_up_at_its_timeout(http: httpx.AsyncClient) -> None:
    released = anyio.Event()

    async def hang(request: Request) -> Response:
        await released.wait()
        return JSONResponse({"name": "late"})

    timeout = 0.5
    async with serve(Starlette(routes=[Route(CARD_PATH, hang)])) as url:
        try:
            started = anyio.current_time()
            result = await probe_a2a(http, url, seconds=timeout)
            elapsed = anyio.current_time() - started
        finally:
            released.set()
    assert result == ProbeResult(False, "timed out after 0.5 s")
    assert timeout <= elapsed < timeout + 0.5


# --- MCP ---------------------------------------------------------------------------------


async def test_mcp_probe_passes_against_a_real_server_statelessly(
    http: httpx.AsyncClient,
) -> None:
    async with running_mcp_server() as url:
        result = await probe(http, instance(Kind.MCP_SERVER, url))
    assert result == ProbeResult(True, f"MCP tools/list answered: 2 tools ({MCP_MODERN_VERSION})")


class HandshakeOnly:
    """The real SDK server behind a front that does not serve the 2026-07-28 era.

    ``refusal="ignore"`` drops the version header, so the SDK's own handshake transport
    answers the request as an mcp 1.x server does (400, missing session);
    ``refusal="-32022"`` answers as a server whose supported versions are ``supported``.
    Every request is recorded as ``(HTTP method, MCP-Protocol-Version, session id)``.
    """

    def __init__(self, app: ASGIApp, refusal: str, supported: list[str]) -> None:
        self.app, self.refusal, self.supported = app, refusal, supported
        self.seen: list[tuple[str, str | None, str | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        version = headers.get("mcp-protocol-version")
        self.seen.append((scope["method"], version, headers.get("mcp-session-id")))
        if version != MCP_MODERN_VERSION:
            return await self.app(scope, receive, send)
        if self.refusal == "ignore":
            kept = [(k, v) for k, v in scope["headers"] if k != b"mcp-protocol-version"]
            return await self.app({**scope, "headers": kept}, receive, send)
        body = await Request(scope, receive).json()
        data = {"supported": self.supported, "requested": version}
        error = {"code": -32022, "message": "Unsupported protocol version", "data": data}
        answer = JSONResponse({"jsonrpc": "2.0", "id": body["id"], "error": error}, 400)
        return await answer(scope, receive, send)


HANDSHAKE_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", MCP_HANDSHAKE_VERSION]


@pytest.mark.parametrize("refusal", ["ignore", "-32022"])
async def test_mcp_probe_falls_back_to_the_handshake_era(
    http: httpx.AsyncClient, refusal: str
) -> None:
    front = HandshakeOnly(mcp_server_app(), refusal, HANDSHAKE_VERSIONS)
    async with serve(front) as base:
        result = await probe(http, instance(Kind.MCP_SERVER, base + "/mcp"))
    assert result == ProbeResult(
        True, f"MCP tools/list answered: 2 tools (handshake {MCP_HANDSHAKE_VERSION})"
    )
    session = front.seen[2][2]
    assert session
    assert front.seen == [
        ("POST", MCP_MODERN_VERSION, None),  # tools/list, stateless: refused
        ("POST", None, None),  # initialize
        ("POST", MCP_HANDSHAKE_VERSION, session),  # notifications/initialized
        ("POST", MCP_HANDSHAKE_VERSION, session),  # tools/list
        ("DELETE", MCP_HANDSHAKE_VERSION, session),  # the session is closed
    ]


async def test_mcp_probe_does_not_fall_back_from_a_newer_only_server(
    http: httpx.AsyncClient,
) -> None:
    front = HandshakeOnly(mcp_server_app(), "-32022", ["2027-01-01"])
    async with serve(front) as base:
        result = await probe(http, instance(Kind.MCP_SERVER, base + "/mcp"))
    assert not result.ok
    assert result.output == "MCP server supports none of our versions: ['2027-01-01']"
    assert len(front.seen) == 1


async def test_mcp_probe_fails_on_a_server_error(http: httpx.AsyncClient) -> None:
    async def broken(request: Request) -> Response:
        return Response("boom", status_code=500)

    async with serve(Starlette(routes=[Route("/mcp", broken, methods=["POST"])])) as base:
        result = await probe(http, instance(Kind.MCP_SERVER, base + "/mcp"))
    assert result == ProbeResult(False, "HTTP 500 from MCP endpoint")


async def test_mcp_probe_fails_on_a_closed_port(http: httpx.AsyncClient) -> None:
    result = await probe(http, instance(Kind.MCP_SERVER, f"http://127.0.0.1:{free_port()}/mcp"))
    assert result == ProbeResult(False, "connect refused")


async def test_mcp_probe_fails_when_the_answer_is_not_json_rpc(http: httpx.AsyncClient) -> None:
    async def html(request: Request) -> Response:
        return HTMLResponse("<html>login</html>")

    async with serve(Starlette(routes=[Route("/mcp", html, methods=["POST"])])) as base:
        result = await probe(http, instance(Kind.MCP_SERVER, base + "/mcp"))
    assert result == ProbeResult(
        False, "MCP endpoint answered HTTP 200 without a JSON-RPC response"
    )
