"""Thousands of unauthenticated requests onto every gateway route; then a grep for secrets.

The gateway is the real app with API keys and JWTs (HS256 and a JWKS) on, over
a real registry, the echo replicas and a recording agent. Requests go in
process with exact raw paths (no client normalises them). None of the corpus
(:mod:`tests.security.auth_corpus`) may answer 2xx, except on the exact public
paths (health, the dashboard's shell) with GET or HEAD; none may answer 5xx;
none may reach an upstream. The same module then drives valid keys, tokens
and an MCP session, and greps every log line and span the module produced
for the keys, tokens, secret and session ids it used.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.mcp import McpSettings
from gateway.security import AuthSettings, normalize_path
from gateway.ui import SHELL_PATHS
from tests.agents.mesh import a2a_registration, register
from tests.gateway.integration.mesh import Mesh, routes_ready, running_mesh
from tests.gateway.security import tokens
from tests.gateway.security.asgi import Result, call, http_scope
from tests.registry.server.conftest import running_registry
from tests.security.auth_corpus import BAD_CREDENTIALS, KEY, Case, cases
from tests.security.telemetry import Captured, captured
from tests.support.live import serve

pytestmark = pytest.mark.anyio

PUBLIC = frozenset({"/healthz", "/readyz"} | SHELL_PATHS)
GOOD = ((b"x-api-key", KEY.encode()),)


@dataclass(frozen=True)
class Secured:
    mesh: Mesh
    #: Requests the recording agent received.
    seen: list[str]
    telemetry: Captured


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def telemetry() -> Iterator[Captured]:
    with captured() as found:
        yield found


def recorder(seen: list[str]) -> Starlette:
    async def any_request(request: Request) -> Response:
        seen.append(request.url.path)
        body = await request.body()
        rpc_id = json.loads(body).get("id") if body.startswith(b"{") else None
        said = {"messageId": "r-1", "role": "ROLE_AGENT", "parts": [{"text": "recorded"}]}
        return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": {"message": said}})

    return Starlette(routes=[Route("/{rest:path}", any_request, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
async def secured(telemetry: Captured) -> AsyncIterator[Secured]:
    seen: list[str] = []
    auth = AuthSettings(
        api_keys=(KEY,),
        jwt_secret=tokens.SECRET,
        jwks=tokens.jwks(),
        issuer=tokens.ISSUER,
        audience=tokens.AUDIENCE,
    )
    async with contextlib.AsyncExitStack() as stack:
        mesh = await stack.enter_async_context(
            running_mesh(
                auth=auth,
                mcp=McpSettings(allowed_hosts=("gateway",)),
                ready_headers={"x-api-key": KEY},
            )
        )
        url = await stack.enter_async_context(serve(recorder(seen)))
        await register(mesh.registry, "recorder", "r1", a2a_registration("recorder", url, ("r",)))
        await routes_ready(mesh.client, 1, service="recorder", headers={"x-api-key": KEY})
        yield Secured(mesh, seen, telemetry)


def body_for(raw_path: bytes, method: str) -> bytes:
    if method not in ("POST", "PUT", "PATCH"):
        return b""
    if b"invoke" in raw_path or b"stream" in raw_path:
        return json.dumps({"text": "hi", "skill": "echo"}).encode()
    message: dict[str, Any] = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER"}
    message |= {"parts": [{"text": "hi"}], "metadata": {"skill": "echo"}}
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    return json.dumps(rpc).encode()


async def send(
    mesh: Mesh,
    method: str,
    raw_path: bytes,
    headers: tuple[tuple[bytes, bytes], ...],
    query: bytes = b"",
) -> Result:
    body = body_for(raw_path, method)
    base = [
        (b"host", b"gateway"),
        (b"content-type", b"application/json"),
        (b"a2a-version", b"1.0"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = http_scope(unquote(raw_path.decode("latin-1")), method, [*base, *headers])
    scope["raw_path"] = raw_path
    scope["query_string"] = query
    return await call(mesh.app, scope, [body])


def may_succeed(case: Case) -> bool:
    canonical = normalize_path(case.raw_path)
    return canonical in PUBLIC and case.method in ("GET", "HEAD")


async def test_no_request_without_a_valid_credential_answers_2xx(secured: Secured) -> None:
    corpus = list(cases())
    assert len(corpus) >= 500
    statuses: Counter[int] = Counter()
    leaks: list[tuple[str, bytes, str, int]] = []
    before = len(secured.seen)
    for case in corpus:
        answer = await send(
            secured.mesh, case.method, case.raw_path, BAD_CREDENTIALS[case.credential], case.query
        )
        statuses[answer.status] += 1
        if 200 <= answer.status < 300 and not may_succeed(case):
            leaks.append((case.method, case.raw_path, case.credential, answer.status))
        if answer.status == 401:
            assert answer.headers[b"www-authenticate"].startswith(b'Bearer realm="meshgate"')
    print(f"auth corpus: {len(corpus)} requests; statuses {dict(statuses)}")
    assert leaks == []
    assert all(status < 500 for status in statuses), statuses
    assert statuses[401] > len(corpus) / 2  # the corpus is mostly refused for want of credentials
    assert len(secured.seen) == before  # nothing reached an upstream


@pytest.mark.parametrize(
    "credential",
    [
        GOOD,
        ((b"authorization", f"Bearer {KEY}".encode()),),
        ((b"authorization", f"Bearer {tokens.hs256()}".encode()),),
        ((b"authorization", f"Bearer {tokens.rs256(sub='bob')}".encode()),),
        ((b"authorization", f"Bearer {tokens.es256(sub='carol')}".encode()),),
    ],
    ids=["x-api-key", "bearer key", "hs256", "rs256", "es256"],
)
async def test_a_valid_credential_opens_the_routes(
    secured: Secured, credential: tuple[tuple[bytes, bytes], ...]
) -> None:
    # The control: the same requests with a valid credential succeed, and reach agents.
    before = len(secured.seen)
    for method, raw in [
        ("GET", b"/v1/agents"),
        ("GET", b"/metrics"),
        ("GET", b"/ui/state.json"),
        ("GET", b"/a2a/echo/.well-known/agent-card.json"),
        ("POST", b"/a2a/echo/"),
        ("POST", b"/a2a/recorder/"),
        ("POST", b"/v1/invoke/recorder"),
    ]:
        answer = await send(secured.mesh, method, raw, credential)
        assert answer.status == 200, (method, raw, answer.body[:200])
    assert len(secured.seen) == before + 2


async def mcp_session(mesh: Mesh) -> str:
    initialize: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "tests", "version": "1"},
        },
    }
    headers = {"x-api-key": KEY, "accept": "application/json, text/event-stream"}
    opened = await mesh.client.post("/mcp", json=initialize, headers=headers)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    headers["mcp-session-id"] = session
    notified = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await mesh.client.post("/mcp", json=notified, headers=headers)).status_code == 202
    listed = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert (await mesh.client.post("/mcp", json=listed, headers=headers)).status_code == 200
    # A stranger holding the session id but no credential gets nowhere.
    stranger = {"mcp-session-id": session, "accept": headers["accept"]}
    assert (await mesh.client.post("/mcp", json=listed, headers=stranger)).status_code == 401
    assert (await mesh.client.delete("/mcp", headers=headers)).status_code in (200, 204)
    return session


REGISTRY_KEY = "registry-key-0123456789abcdef"
WRONG_REGISTRY_KEY = "registry-key-wrong-456789abcdef"


async def registry_writes() -> None:
    """A registry with an API key: writes with it, with a wrong one, with none."""
    body = a2a_registration("web", "http://127.0.0.1:9/", ("s",)).model_dump(mode="json")
    async with running_registry(api_keys=(REGISTRY_KEY,)) as registry:
        path = "/v1/services/web/instances/w1"
        for key, status in ((REGISTRY_KEY, 201), (WRONG_REGISTRY_KEY, 401), (None, 401)):
            headers = {"authorization": f"Bearer {key}"} if key else {}
            response = await registry.put(path, json=body, headers=headers)
            assert response.status_code == status, response.text
        assert (await registry.delete(path, headers={"x-api-key": REGISTRY_KEY})).status_code == 204


async def test_no_secret_in_any_log_line_or_span(secured: Secured) -> None:
    mesh = secured.mesh
    used_tokens = [tokens.hs256(sub="dave"), tokens.rs256(sub="erin"), tokens.es256(sub="frank")]
    for token in used_tokens:
        bearer = ((b"authorization", f"Bearer {token}".encode()),)
        assert (await send(mesh, "POST", b"/a2a/echo/", bearer)).status == 200
        assert (await send(mesh, "POST", b"/a2a/nobody/", bearer)).status == 404
        bad = ((b"authorization", f"Bearer {token[:-3]}".encode()),)
        assert (await send(mesh, "POST", b"/a2a/echo/", bad)).status == 401
    sessions = [await mcp_session(mesh)]
    await registry_writes()
    secrets = {
        "api key": KEY,
        "hs256 secret": tokens.SECRET,
        **{f"token {i}": token for i, token in enumerate(used_tokens)},
        # A signature alone is a token's secret half.
        **{f"signature {i}": token.rsplit(".", 1)[1] for i, token in enumerate(used_tokens)},
        **{f"session {i}": session for i, session in enumerate(sessions)},
        "registry key": REGISTRY_KEY,
        "wrong registry key": WRONG_REGISTRY_KEY,
    }
    for name, headers in BAD_CREDENTIALS.items():
        for header, value in headers:
            if header in (b"authorization", b"x-api-key") and len(value) >= 16:
                secrets[f"corpus {name}"] = value.decode("latin-1").removeprefix("Bearer ")
    texts = list(secured.telemetry.texts())
    # Not vacuous: the module's traffic was logged and traced.
    assert len(secured.telemetry.lines) > 100
    assert len(secured.telemetry.spans) > 30
    hits = [(name, text[:200]) for text in texts for name, s in secrets.items() if s in text]
    print(f"grep: {len(texts)} log lines and spans, {len(secrets)} secrets, {len(hits)} hits")
    assert hits == []
