"""The lean path for ``POST /a2a/{agent}/`` (``raw_request`` under the gateway's
protocol): the same bytes on the wire as the ASGI path, for every kind of answer.

Two real servers on loopback run the same gateway app under
:class:`~meshgate.protocol.ProxyProtocol`: one as it is (the lean path taken),
one with the lean path off (:class:`AsgiOnly`: the ASGI fast path). Each
request is sent to both as the same bytes, and the answers compared byte for
byte. The upstream is a real agent-shaped ASGI app whose answers are fixed, so
two calls give the same bytes.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette

from gateway.app import GatewaySettings
from gateway.security import AuthSettings
from meshgate.protocol import ProxyProtocol
from registry.client import RegistryClient
from tests.agents.mesh import a2a_registration, register
from tests.gateway.integration.mesh import gateway_running, routes_ready
from tests.registry.server.conftest import running_registry

pytestmark = pytest.mark.anyio

KEY = "k" * 32
ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{"ok":true}}'
EVENTS = [b'data: {"jsonrpc":"2.0","id":1,"result":{"n":%d}}\n\n' % n for n in range(3)]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Fixed answers: SSE when the body asks to stream, a 503 for "fail", else JSON."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if b"SendStreamingMessage" in body:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in EVENTS:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 503 if b"fail" in body else 200
    headers = [(b"content-type", b"application/json"), (b"x-upstream", b"yes")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


@contextlib.asynccontextmanager
async def serving(app: Any, **config: Any) -> AsyncIterator[int]:
    """``app`` under uvicorn on a loopback port (lifespan off); yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    settings = uvicorn.Config(app, lifespan="off", log_level="warning", **config)
    server = uvicorn.Server(settings)
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
                await anyio.sleep(0.005)
        try:
            yield int(sock.getsockname()[1])
        finally:
            server.should_exit = True
    sock.close()


async def call(port: int, request: bytes) -> bytes:
    """One request on a fresh connection that the request closes; every byte answered."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(request)
        data = b""
        with anyio.fail_after(10):
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    data += await stream.receive()
    return data


def post(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "host: gw", f"content-length: {len(body)}", *headers]
    head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Pair = Callable[[bytes], Awaitable[tuple[bytes, bytes]]]


@contextlib.asynccontextmanager
async def both_paths(**settings: Any) -> AsyncIterator[tuple[Pair, list[bool]]]:
    """The gateway in front of :func:`upstream`, served twice: lean path, ASGI path.

    Yields a function sending one request to each (lean first) and the list of
    the lean path's outcomes (True: it answered).
    """
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(running_registry())
        registry = RegistryClient("http://registry", http=http)
        up = await stack.enter_async_context(serving(upstream, date_header=False))
        await register(
            registry, "fixed", "one", a2a_registration("fixed", f"http://127.0.0.1:{up}", ("x",))
        )
        gateway_settings = GatewaySettings(registry_url="http://registry", **settings)
        app, client, _ = await stack.enter_async_context(gateway_running(gateway_settings, http))
        headers = {"x-api-key": KEY} if gateway_settings.auth.api_keys else None
        await routes_ready(client, 1, service="fixed", headers=headers)
        outcomes = taking(app)

        config: dict[str, Any] = {"proxy_headers": False, "server_header": False}
        config["date_header"] = False
        lean = await stack.enter_async_context(serving(app, http=ProxyProtocol, **config))
        asgi = await stack.enter_async_context(serving(app, http=AsgiOnly, **config))

        async def pair(request: bytes) -> tuple[bytes, bytes]:
            return await call(lean, request), await call(asgi, request)

        yield pair, outcomes


class AsgiOnly(ProxyProtocol):
    """The gateway's protocol, never offering a request to the lean path."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._raw = None


def taking(app: Starlette) -> list[bool]:
    """Record each answer of the app's lean path (True when it took the request)."""
    outcomes: list[bool] = []
    raw = app.raw_request  # type: ignore[attr-defined]

    async def recorded(scope: Any, body: bytes, reply: Any) -> bool:
        taken: bool = await raw(scope, body, reply)
        outcomes.append(taken)
        return taken

    app.raw_request = recorded  # type: ignore[attr-defined]
    return outcomes


RPC = b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"t1"}}'
STREAM = b'{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{"message":{}}}'


async def test_a_proxied_answer_is_the_same_bytes_as_through_asgi() -> None:
    async with both_paths() as (pair, outcomes):
        lean, asgi = await pair(post("/a2a/fixed/", RPC, "content-type: application/json"))
    assert lean == asgi
    assert lean.startswith(b"HTTP/1.1 200 OK\r\n")
    assert lean.endswith(b"\r\n\r\n" + ANSWER)
    assert b"x-content-type-options: nosniff" in lean
    assert b"x-upstream: yes" in lean
    assert outcomes == [True]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/a2a/nobody/", RPC, b"404"),  # no such agent
        ("/a2a/fixed/", b"{not json", b"400"),  # a JSON-RPC parse error
        ("/a2a/fixed/", b"[1]", b"400"),  # not a request object
        ("/a2a/fixed/", b'{"jsonrpc":"2.0","id":1,"method":"GetTask","fail":1}', b"503"),
        ("/a2a/./fixed//", RPC, b"200"),  # a path variant, normalised
        ("/A2A/fixed/", RPC, b"404"),  # paths are case-sensitive
    ],
)
async def test_errors_and_odd_paths_are_the_same_bytes_as_through_asgi(
    path: str, body: bytes, status: bytes
) -> None:
    async with both_paths() as (pair, _):
        lean, asgi = await pair(post(path, body))
    assert lean == asgi
    assert lean.startswith(b"HTTP/1.1 " + status)


@pytest.mark.parametrize("path", ["/a2a/fixed/", "/a2a/./fixed//"])
async def test_a_body_over_the_limit_gets_the_same_bytes_as_through_asgi(path: str) -> None:
    async with both_paths(max_body_bytes=len(RPC) - 1) as (pair, outcomes):
        lean, asgi = await pair(post(path, RPC))
    assert lean == asgi
    assert lean.startswith(b"HTTP/1.1 413")
    assert outcomes == [True]


async def test_a_refused_caller_gets_the_same_bytes_as_through_asgi() -> None:
    async with both_paths(auth=AuthSettings(api_keys=(KEY,))) as (pair, outcomes):
        refused = await pair(post("/a2a/fixed/", RPC))
        wrong = await pair(post("/a2a/fixed/", RPC, "x-api-key: nope"))
        allowed = await pair(post("/a2a/fixed/", RPC, f"x-api-key: {KEY}"))
    for lean, asgi in (refused, wrong, allowed):
        assert lean == asgi
    assert refused[0].startswith(b"HTTP/1.1 401")
    assert wrong[0].startswith(b"HTTP/1.1 401")
    assert allowed[0].startswith(b"HTTP/1.1 200")
    assert outcomes == [True, True, True]


async def test_a_stream_is_the_same_bytes_as_through_asgi() -> None:
    async with both_paths() as (pair, outcomes):
        lean, asgi = await pair(post("/a2a/fixed/", STREAM))
    assert lean == asgi
    assert b"transfer-encoding: chunked" in lean
    for event in EVENTS:
        assert event in lean
    assert lean.endswith(b"0\r\n\r\n")
    assert outcomes == [True]


async def test_a_rate_limited_caller_gets_the_same_bytes_as_through_asgi() -> None:
    async with both_paths(rate_limit=0.001, rate_burst=1.0) as (pair, _):
        first = await pair(post("/a2a/fixed/", RPC))
        second = await pair(post("/a2a/fixed/", RPC))
    # One bucket per caller address, shared by both servers: the lean path spends it.
    assert first[0].startswith(b"HTTP/1.1 200")
    assert first[1].startswith(b"HTTP/1.1 429")
    assert second[0] == second[1]
    assert second[0].startswith(b"HTTP/1.1 429")


async def test_other_requests_go_through_asgi_untouched() -> None:
    chunked = (
        b"POST /a2a/fixed/ HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n"
        b"connection: close\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(RPC), RPC)
    )
    async with both_paths() as (pair, outcomes):
        with_origin = await pair(post("/a2a/fixed/", RPC, "origin: http://elsewhere"))
        binding = await pair(post("/a2a/fixed/message:send", b"{}"))
        card = await pair(post("/a2a/fixed/.well-known/agent-card.json", b""))
        streamed_body = await pair(chunked)
    for lean, asgi in (with_origin, binding, card, streamed_body):
        assert lean == asgi
    assert streamed_body[0].startswith(b"HTTP/1.1 200")
    assert outcomes == [False, False, False, False]
