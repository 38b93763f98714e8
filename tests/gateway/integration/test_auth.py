"""API keys through the real gateway app: every path variant x every bad credential.

Requests go to the app in-process with exact raw paths (no client normalises
them). Nothing that is not one of the exact public paths answers 2xx without
the key; with the key, every route works; and the key never reaches an
upstream: a recording app registered as an agent (``recorder``) is the
upstream there, and sees every header the gateway forwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.security import AuthSettings
from tests.agents.mesh import a2a_registration, register
from tests.gateway.integration.mesh import Mesh, routes_ready, running_mesh
from tests.gateway.security.asgi import Result, call, http_scope
from tests.support.live import serve

pytestmark = pytest.mark.anyio

KEY = "k1"
GOOD = [(b"x-api-key", KEY.encode())]
#: The variants below that are the public paths (``/healthz``, ``/readyz``) once canonical.
#: The dashboard's page and assets hold no data: a browser loads them, then asks for a key.
PUBLIC = {b"/healthz", b"/readyz", b"/healthz/", b"/./readyz", b"/ui", b"/ui/", b"/ui/ui.js"}


def recorder_app(seen: list[list[tuple[bytes, bytes]]]) -> Starlette:
    """An upstream that records the headers of every request and answers as an agent would."""

    async def rpc(request: Request) -> Response:
        seen.append(list(request.scope["headers"]))
        body = json.loads(await request.body())
        said = {"messageId": "r-1", "role": "ROLE_AGENT", "parts": [{"text": "recorded"}]}
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {"message": said}})

    async def other(request: Request) -> Response:
        seen.append(list(request.scope["headers"]))
        return JSONResponse({"id": "t-1", "status": {"state": "TASK_STATE_COMPLETED"}})

    return Starlette(
        routes=[
            Route("/", rpc, methods=["POST"]),
            Route("/{rest:path}", other, methods=["GET", "POST"]),
        ]
    )


@dataclass(frozen=True)
class Secured:
    mesh: Mesh
    #: Headers of every request the recorder received.
    seen: list[list[tuple[bytes, bytes]]]


@pytest.fixture(scope="module")
async def secured() -> AsyncIterator[Secured]:
    seen: list[list[tuple[bytes, bytes]]] = []
    auth = AuthSettings(api_keys=(KEY,))
    async with contextlib.AsyncExitStack() as stack:
        mesh = await stack.enter_async_context(
            running_mesh(auth=auth, ready_headers={"x-api-key": KEY})
        )
        url = await stack.enter_async_context(serve(recorder_app(seen)))
        registration = a2a_registration("recorder", url, ("record",))
        await register(mesh.registry, "recorder", "r1", registration)
        await routes_ready(mesh.client, 1, service="recorder", headers={"x-api-key": KEY})
        yield Secured(mesh, seen)


def send_message(text: str = "hi") -> bytes:
    message: dict[str, Any] = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": text}]}
    message["metadata"] = {"skill": "echo"}
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    return json.dumps(rpc).encode()


async def request(
    mesh: Mesh, method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> Result:
    base = [(b"host", b"gateway"), (b"content-type", b"application/json")]
    scope = http_scope(unquote(raw_path.decode("latin-1")), method, [*base, *headers])
    scope["raw_path"] = raw_path
    scope["headers"].append((b"a2a-version", b"1.0"))
    return await call(mesh.app, scope, [body])


#: Raw paths onto every route family, including their variants.
VARIANTS = [
    # A2A JSON-RPC, card, binding, skills
    b"/a2a/echo/", b"/a2a/echo", b"//a2a/echo/", b"/a2a//echo//", b"/a2a/./echo/",
    b"/a2a/x/../echo/", b"/a2a/echo/%2e/", b"/a2a/%65cho/", b"/a2a/echo;x/", b"/A2A/echo/",
    b"/a2a/echo/.well-known/agent-card.json", b"/a2a/echo//.well-known/./agent-card.json",
    b"/a2a/echo/.well-known/%61gent-card.json", b"/a2a/echo/tasks/t-1",
    b"/a2a/echo/message:send", b"/a2a/skills/echo/",
    b"/a2a/skills/echo/.well-known/agent-card.json",
    b"/a2a/skills/../echo/", b"/a2a/nobody/", b"/a2a/nobody/.well-known/agent-card.json",
    b"/a2a/recorder/", b"/a2a/recorder/tasks/t-1",
    # REST facade and listing
    b"/v1/agents", b"/v1/agents/", b"//v1/agents", b"/v1/./agents", b"/v1/%61gents",
    b"/v1/invoke/echo", b"/v1//invoke/echo/", b"/v1/stream/echo", b"/v1/invoke/nobody",
    b"/v1/invoke/recorder", b"/x/../v1/agents",
    # operations and docs
    b"/metrics", b"/metrics/", b"//metrics", b"/%6detrics", b"/healthz/../metrics",
    b"/docs", b"/docs/", b"/openapi.json", b"/readyz/../docs",
    # public, and near-public
    b"/healthz", b"/readyz", b"/healthz/", b"/./readyz", b"/healthz/x", b"/HEALTHZ",
    b"/healthz%2f..%2fmetrics", b"/healthz%00",
    # nothing there
    b"/", b"/nope", b"/mcp",
    # the dashboard: its page is public, its data is not
    b"/ui", b"/ui/", b"/ui/ui.js", b"/ui/state.json", b"/ui/state.json/", b"/ui/x/../state.json",
    b"/UI/state.json", b"/ui/%73tate.json",
]  # fmt: skip

#: Credentials that are not the key, however they are presented.
BAD_CREDENTIALS: dict[str, list[tuple[bytes, bytes]]] = {
    "none": [],
    "wrong key": [(b"x-api-key", b"k2")],
    "key, other case": [(b"x-api-key", b"K1")],
    "key prefix": [(b"x-api-key", b"k")],
    "key extended": [(b"x-api-key", b"k1k1")],
    "wrong bearer": [(b"authorization", b"Bearer k2")],
    "empty bearer": [(b"authorization", b"Bearer ")],
    "basic scheme": [(b"authorization", b"Basic k1")],
    "no scheme": [(b"authorization", b"k1")],
    "key twice": [(b"x-api-key", b"k1"), (b"x-api-key", b"k1")],
    "wrong key, then key": [(b"x-api-key", b"k2"), (b"x-api-key", b"k1")],
    "bearer twice": [(b"authorization", b"Bearer k1"), (b"authorization", b"Bearer k1")],
    "cookie": [(b"cookie", b"x-api-key=k1")],
    "proxy authorization": [(b"proxy-authorization", b"Bearer k1")],
    "other header": [(b"x-api-token", b"k1")],
    "CORS preflight": [
        (b"origin", b"http://evil.example"),
        (b"access-control-request-method", b"POST"),
    ],
}
METHODS = ("GET", "POST", "HEAD", "OPTIONS", "DELETE")


async def test_no_variant_answers_2xx_without_the_key(secured: Secured) -> None:
    mesh = secured.mesh
    cases = [
        (method, raw, name) for raw in VARIANTS for name in BAD_CREDENTIALS for method in METHODS
    ]
    assert len(cases) >= 100
    leaks: list[tuple[str, bytes, str, int]] = []
    statuses: set[int] = set()
    before = len(secured.seen)
    for method, raw, name in cases:
        body = send_message() if method == "POST" else b""
        answer = await request(mesh, method, raw, BAD_CREDENTIALS[name], body)
        statuses.add(answer.status)
        if 200 <= answer.status < 300 and not (raw in PUBLIC and method in ("GET", "HEAD")):
            leaks.append((method, raw, name, answer.status))
        if answer.status == 401:
            assert answer.headers[b"www-authenticate"].startswith(b'Bearer realm="meshgate"')
    assert leaks == []
    assert statuses <= {200, 400, 401, 403, 405}, statuses
    assert len(secured.seen) == before  # nothing reached an upstream


@pytest.mark.parametrize(
    "credential",
    [[(b"x-api-key", b"k1")], [(b"authorization", b"Bearer k1")], [(b"x-api-key", b" k1 ")]],
    ids=["x-api-key", "bearer", "x-api-key with blanks"],
)
async def test_the_key_opens_every_route(
    secured: Secured, credential: list[tuple[bytes, bytes]]
) -> None:
    mesh = secured.mesh
    ok = {
        ("GET", b"/v1/agents"): 200,
        ("GET", b"//v1/./agents/"): 200,
        ("GET", b"/metrics"): 200,
        ("GET", b"/docs"): 200,
        ("GET", b"/openapi.json"): 200,
        ("GET", b"/a2a/echo/.well-known/agent-card.json"): 200,
        ("GET", b"/a2a/skills/echo/.well-known/agent-card.json"): 200,
        ("POST", b"/a2a/echo/"): 200,
        ("POST", b"/a2a/x/../echo/"): 200,
        ("POST", b"/a2a/skills/echo/"): 200,
        ("POST", b"/v1/invoke/echo"): 200,
        ("GET", b"/a2a/nobody/.well-known/agent-card.json"): 404,
    }
    for (method, raw), status in ok.items():
        body = send_message() if method == "POST" else b""
        if raw.startswith(b"/v1/invoke"):
            body = json.dumps({"text": "hi", "skill": "echo"}).encode()
        answer = await request(mesh, method, raw, credential, body)
        assert answer.status == status, (method, raw, answer.body)


async def test_the_callers_credentials_never_reach_the_agent(secured: Secured) -> None:
    mesh = secured.mesh
    credentials = [
        (b"authorization", b"Bearer k1"),
        (b"x-api-key", b"k1"),
        (b"cookie", b"session=k1"),
        (b"proxy-authorization", b"Basic k1"),
    ]
    # Authorization wins over X-API-Key when both come: each of these is authenticated.
    ways = [credentials, credentials[1:], [credentials[0], *credentials[2:]]]
    sent: list[tuple[str, bytes, bytes]] = []
    for headers in ways:
        sent += [
            ("POST", b"/a2a/recorder/", send_message()),
            ("GET", b"/a2a/recorder/tasks/t-1", b""),
            ("POST", b"/v1/invoke/recorder", json.dumps({"text": "hi"}).encode()),
            ("POST", b"/v1/stream/recorder", json.dumps({"text": "hi"}).encode()),
        ]
        before = len(secured.seen)
        for method, raw, body in sent[-4:]:
            answer = await request(mesh, method, raw, headers, body)
            assert answer.status == 200, (raw, answer.body)
        assert len(secured.seen) == before + 4
    assert len(secured.seen) >= len(sent)
    for seen in secured.seen:
        names = {name for name, _ in seen}
        assert b"x-forwarded-proto" in names  # what the gateway forwards, as it forwards it
        assert not names & {b"authorization", b"x-api-key", b"cookie", b"proxy-authorization"}
        assert not any(KEY.encode() in value for _, value in seen), seen
