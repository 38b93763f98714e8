"""Every path variant x every credential, over a real socket, through uvicorn.

Raw request targets are written to the socket byte for byte (no client
library normalises them first). The app behind the middleware mimics the
gateway's routes and echoes what it saw. Invariants checked for each pair:
no 2xx without a valid credential (except the exact public paths), every
valid credential reaches the canonical route, unknown and known agents look
the same to an unauthenticated caller, and the app never sees credentials.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.security import STRIPPED_HEADERS, Authenticator, AuthMiddleware, AuthSettings
from gateway.security.authenticator import key_fingerprint
from tests.gateway.security import tokens
from tests.gateway.security.rawhttp import raw_request
from tests.support.live import serve

pytestmark = pytest.mark.anyio

AGENTS = {"researcher"}
SKILLS = {"search"}
PUBLIC = {"/healthz", "/readyz"}
REFUSED = None  # canonical form of a path the gateway answers 400


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def echo(request: Request) -> JSONResponse:
    params = request.path_params
    if params.get("agent", next(iter(AGENTS))) not in AGENTS:
        return JSONResponse({"detail": "no such agent"}, status_code=404)
    if params.get("skill", next(iter(SKILLS))) not in SKILLS:
        return JSONResponse({"detail": "no such skill"}, status_code=404)
    return JSONResponse(
        {
            "path": request.scope["path"],
            "raw_path": request.scope["raw_path"].decode(),
            "headers": [name.decode() for name, _ in request.scope["headers"]],
            "principal": request.scope["state"]["principal"].id,
        }
    )


ANY = ["GET", "POST"]
ROUTES = [
    Route(path, echo, methods=ANY)
    for path in (
        "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/ui", "/mcp",
        "/v1/agents", "/v1/invoke/{agent}", "/v1/stream/{agent}", "/a2a/skills/{skill}",
        "/a2a/{agent}", "/a2a/{agent}/{rest:path}",
    )
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    raw: bytes
    canonical: str | None
    exists: bool = True
    method: bytes = b"GET"


def case(raw: str | bytes, canonical: str | None, exists: bool = True, post: bool = False) -> Case:
    target = raw.encode() if isinstance(raw, str) else raw
    return Case(target, canonical, exists, b"POST" if post else b"GET")


R = "/a2a/researcher"
CARD = R + "/.well-known/agent-card.json"
PATHS = [
    # canonical routes
    case(R, R, post=True), case(CARD, CARD), case("/a2a/skills/search", "/a2a/skills/search"),
    case("/v1/invoke/researcher", "/v1/invoke/researcher", post=True),
    case("/v1/stream/researcher", "/v1/stream/researcher", post=True),
    case("/v1/agents", "/v1/agents"), case("/metrics", "/metrics"), case("/mcp", "/mcp", post=True),
    case("/docs", "/docs"), case("/openapi.json", "/openapi.json"), case("/ui", "/ui"),
    case("/healthz", "/healthz"), case("/readyz", "/readyz"),
    case(R + "/tasks/abc", R + "/tasks/abc"),
    # unknown agent / skill: 401 unauthenticated, exactly as for known ones
    case("/a2a/ghost", "/a2a/ghost", exists=False, post=True),
    case("/a2a/ghost/.well-known/agent-card.json", "/a2a/ghost/.well-known/agent-card.json", False),
    case("/a2a/skills/nothing", "/a2a/skills/nothing", exists=False),
    # trailing and doubled slashes
    case(R + "/", R, post=True), case("//a2a//researcher", R), case(CARD + "/", CARD),
    case("/v1//invoke///researcher", "/v1/invoke/researcher", post=True),
    case("/mcp/", "/mcp", post=True), case("/ui/", "/ui"),
    case("/a2a/skills/search/", "/a2a/skills/search"),
    case("/healthz/", "/healthz"), case("//healthz", "/healthz"),
    # dot segments, plain and percent-encoded
    case("/a2a/./researcher", R), case("/a2a/x/../researcher", R),
    case("/a2a/%2e%2e/a2a/researcher", R), case("/a2a/%2E%2E/v1/agents", "/v1/agents"),
    case("/healthz/../a2a/researcher", R), case("/healthz/%2e%2e/metrics", "/metrics"),
    case("/./healthz", "/healthz"), case("/healthz/.", "/healthz"), case("/healthz/..", "/", False),
    case("/v1/agents/.", "/v1/agents"), case("/v1/agents/..", "/v1", False),
    case(R + "/%2e/.well-known/agent-card.json", CARD), case("/docs/../docs", "/docs"),
    case("/a2a/skills/../skills/search", "/a2a/skills/search"),
    case("/openapi.json/.", "/openapi.json"),
    case("/..", REFUSED), case("/../healthz", REFUSED), case("/a2a/../../healthz", REFUSED),
    case("/%2e%2e/healthz", REFUSED),
    # encoded slashes and backslashes: refused, never decoded into separators
    case("/healthz%2F..%2Fmetrics", REFUSED), case("/a2a%2Fresearcher", REFUSED),
    case(R + "%2F..%2F..%2Fv1%2Fagents", REFUSED), case("/a2a%5Cresearcher", REFUSED),
    case("/%2fhealthz", REFUSED), case("/mcp%2F", REFUSED, post=True), case("/healthz%5c", REFUSED),
    case("/a2a\\researcher", REFUSED), case("/healthz\\..\\metrics", REFUSED),
    # case: significant, so variants are other (unrouted) paths, never public
    case("/A2A/researcher", "/A2A/researcher", False), case("/HEALTHZ", "/HEALTHZ", False),
    case("/Healthz/", "/Healthz", False), case("/MCP", "/MCP", False, post=True),
    case(CARD.upper(), CARD.upper(), False),
    case("/a2a/Researcher", "/a2a/Researcher", False),
    # ";" is no separator: literal segments
    case("/healthz;x=1", "/healthz;x=1", False),
    case(R + ";.well-known", R + ";.well-known", False),
    case(R + "/..;/..;/v1/agents", R + "/..;/..;/v1/agents"),
    case("/metrics;/healthz", "/metrics;/healthz", False),
    # query and fragment tricks: the path is what counts
    case("/metrics?x=/healthz", "/metrics"), case("/healthz?/../metrics", "/healthz"),
    case("/metrics?/healthz", "/metrics"), case("/healthz#/../metrics", "/healthz"),
    case("/metrics#/../healthz", "/metrics"), case("*", REFUSED),
    case("/a2a/ghost?agent=researcher", "/a2a/ghost", False),
    case("/healthz%3F/../metrics", REFUSED), case("/metrics%23/../healthz", REFUSED),
    # NUL and control characters
    case(R + "%00", REFUSED, post=True), case("/a2a/research%00er", REFUSED),
    case("/%00/../a2a/researcher", REFUSED), case(R + "%0a", REFUSED), case("/healthz%09", REFUSED),
    case("/healthz%0d%0aX-API-Key:%20" + tokens.API_KEY, REFUSED), case("/healthz%7f", REFUSED),
    case("/metrics%00.json", REFUSED), case(b"/a2a/x\x01", REFUSED), case(b"/a2a/\xff", REFUSED),
    # double encoding, bad escapes, bad UTF-8
    case("/a2a/%252e%252e/v1/agents", REFUSED), case("/healthz%252f..%252fmetrics", REFUSED),
    case("/a2a/%zz", REFUSED), case("/a2a/%2", REFUSED),
    case("/a2a/%c0%ae%c0%ae/v1/agents", REFUSED),
    case("/a2a/%ff", REFUSED), case("/a2a/%C3%A9/../../metrics", "/metrics"),
    # unicode
    case("/a2a/r%65searcher", R, post=True), case("/a2a/caf%C3%A9", "/a2a/café", False),
    case("/a2a/café".encode(), REFUSED),  # raw non-ASCII: the HTTP server refuses it
    # fullwidth "." and "/" are letters here (no NFKC anywhere), not separators
    case("/a2a/%EF%BC%8E%EF%BC%8E/v1/agents", "/a2a/\uff0e\uff0e/v1/agents", False),
    case("/healthz%EF%BC%8F..%EF%BC%8Fmetrics", "/healthz\uff0f..\uff0fmetrics", False),
    case("/healthz%20", "/healthz ", False),
    # absolute-form targets
    case("http://127.0.0.1/healthz/../metrics", "/metrics"),
    case("http://127.0.0.1/a2a/researcher/", R, post=True),
]  # fmt: skip


@dataclass(frozen=True)
class Cred:
    name: str
    headers: tuple[tuple[str, str], ...]
    principal: str | None  # None: must be refused


#: Sent with every request, and never to be seen by the app either.
NOT_CREDENTIALS_EITHER = [(b"cookie", b"session=s3cret"), (b"proxy-authorization", b"Basic cHc=")]
KEY_ID = key_fingerprint(tokens.API_KEY.encode())
BAD_KEY = "mk-wrong-key-0123456789abcdef"


def credentials() -> list[Cred]:
    return [
        Cred("none", (), None),
        Cred("wrong-key-bearer", (("Authorization", f"Bearer {BAD_KEY}"),), None),
        Cred("wrong-key-header", (("X-API-Key", BAD_KEY),), None),
        Cred("key-prefix", (("X-API-Key", tokens.API_KEY[:-1]),), None),
        Cred("key-bearer", (("Authorization", f"Bearer {tokens.API_KEY}"),), KEY_ID),
        Cred("key-bearer-lowercase", (("authorization", f"bearer {tokens.API_KEY}"),), KEY_ID),
        Cred("key-header", (("X-API-Key", tokens.API_KEY),), KEY_ID),
        Cred("key-basic-scheme", (("Authorization", f"Basic {tokens.API_KEY}"),), None),
        Cred("empty-bearer", (("Authorization", "Bearer "),), None),
        Cred(
            "two-authorizations",
            (("Authorization", f"Bearer {tokens.API_KEY}"), ("Authorization", "Bearer x")),
            None,
        ),
        Cred(
            "valid-header-bad-bearer",
            (("X-API-Key", tokens.API_KEY), ("Authorization", f"Bearer {BAD_KEY}")),
            None,
        ),
        Cred("jwt-in-api-key-header", (("X-API-Key", tokens.hs256()),), None),
        Cred("hs256", _bearer(tokens.hs256()), "jwt:alice"),
        Cred("rs256", _bearer(tokens.rs256(sub="bob")), "jwt:bob"),
        Cred("es256", _bearer(tokens.es256(sub="carol")), "jwt:carol"),
        Cred("expired", _bearer(tokens.hs256(exp=1_000_000_000, iat=999_999_000)), None),
        Cred("not-yet-valid", _bearer(tokens.rs256(nbf=4_000_000_000)), None),
        Cred("no-exp", _bearer(tokens.hs256(exp=None)), None),
        Cred("no-sub", _bearer(tokens.rs256(sub=None)), None),
        Cred("wrong-issuer", _bearer(tokens.rs256(iss="https://evil.test")), None),
        Cred("wrong-audience", _bearer(tokens.hs256(aud="another-service")), None),
        Cred("alg-none", _bearer(tokens.unsigned()), None),
        Cred("hs256-with-rsa-public-key", _bearer(tokens.hs256_with_public_key()), None),
        Cred("forged-rsa-same-kid", _bearer(tokens.rs256(key=tokens.other_rsa_key())), None),
        Cred("unknown-kid", _bearer(tokens.rs256(kid="rotated-away")), None),
        Cred("tampered-payload", _bearer(tokens.tampered()), None),
    ]


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def gateway_port() -> AsyncIterator[int]:
    idp = Starlette(routes=[Route("/jwks.json", lambda _: JSONResponse(tokens.jwks()))])
    async with serve(idp) as idp_url, httpx.AsyncClient(timeout=5) as http:
        settings = AuthSettings(
            api_keys=(tokens.API_KEY,),
            jwt_secret=tokens.SECRET,
            jwks_url=idp_url + "/jwks.json",
            issuer=tokens.ISSUER,
            audience=tokens.AUDIENCE,
            leeway=5,
        )
        app = AuthMiddleware(Starlette(routes=ROUTES), Authenticator(settings, http=http))
        async with serve(app) as url:
            yield int(url.rsplit(":", 1)[1])


def expected_status(case: Case, cred: Cred) -> int:
    if case.canonical is REFUSED:
        return 400
    if case.canonical in PUBLIC:
        return 200
    if cred.principal is None:
        return 401
    return 200 if case.exists else 404


def test_the_matrix_is_large_enough() -> None:
    assert len(PATHS) * len(credentials()) >= 150
    assert len({c.raw for c in PATHS}) == len(PATHS)


@pytest.mark.parametrize("cred", credentials(), ids=lambda c: c.name)
async def test_every_path_variant(gateway_port: int, cred: Cred) -> None:
    problems: list[str] = []
    for case in PATHS:
        headers = [(k.encode(), v.encode()) for k, v in cred.headers] + NOT_CREDENTIALS_EITHER
        body = b'{"jsonrpc":"2.0","id":1,"method":"x"}' if case.method == b"POST" else b""
        reply = await raw_request(gateway_port, case.method, case.raw, headers, body)
        want = expected_status(case, cred)
        label = f"{case.method.decode()} {case.raw!r}"
        if reply.status != want:
            problems.append(f"{label}: {reply.status}, wanted {want}: {reply.body[:120]!r}")
            continue
        if reply.status == 401:
            challenge = reply.headers.get("www-authenticate", "")
            if not challenge.startswith('Bearer realm="meshgate"'):
                problems.append(f"{label}: challenge {challenge!r}")
        if reply.status != 200:
            continue
        seen = json.loads(reply.body)
        principal = "anonymous" if case.canonical in PUBLIC else cred.principal
        if (seen["path"], seen["principal"]) != (case.canonical, principal):
            problems.append(f"{label}: app saw {seen['path']!r} as {seen['principal']!r}")
        if STRIPPED_HEADERS & {name.encode() for name in seen["headers"]}:
            problems.append(f"{label}: credentials reached the app: {seen['headers']}")
    assert not problems, "\n".join(problems)
