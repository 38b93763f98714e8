"""A generated corpus of requests that carry no valid credential, onto every gateway route.

Paths: each route's canonical path, then spelled the ways a path can be bent
(slashes doubled or trailing, dot segments, percent-encoding, a detour through
a public path, case, parameters, encoded separators, control bytes). Methods:
every common one. Credentials: every way of presenting something that is not a
valid key or token (wrong, truncated or re-cased keys, other schemes, keys in
places the gateway does not read, and JSON Web Tokens that fail each check).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from tests.gateway.security import tokens

__all__ = ["BAD_CREDENTIALS", "METHODS", "ROUTES", "Case", "bent_paths", "cases"]

#: Canonical paths onto every route the gateway serves (and some it does not).
ROUTES = (
    "/a2a/echo",
    "/a2a/echo/.well-known/agent-card.json",
    "/a2a/echo/message:send",
    "/a2a/echo/message:stream",
    "/a2a/echo/tasks/t-1",
    "/a2a/echo/tasks/t-1:cancel",
    "/a2a/skills/echo",
    "/a2a/skills/echo/.well-known/agent-card.json",
    "/a2a/recorder",
    "/a2a/recorder/tasks/t-1",
    "/a2a/nobody",
    "/v1/agents",
    "/v1/invoke/echo",
    "/v1/stream/echo",
    "/v1/invoke/recorder",
    "/mcp",
    "/metrics",
    "/docs",
    "/docs.css",
    "/openapi.json",
    "/ui/state.json",
    "/",
    "/nope",
)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

KEY = tokens.API_KEY


def _bearer(token: str) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"authorization", f"Bearer {token}".encode()),)


#: name -> headers; each is refused (the query-string key is added to the path).
BAD_CREDENTIALS: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    "none": (),
    "wrong key": ((b"x-api-key", b"mk-wrong-key-0123456789abcdef"),),
    "key truncated": ((b"x-api-key", KEY[:-1].encode()),),
    "key extended": ((b"x-api-key", (KEY + "0").encode()),),
    "key upper-cased": ((b"x-api-key", KEY.upper().encode()),),
    "key with a NUL": ((b"x-api-key", KEY.encode() + b"\x00"),),
    "key in basic scheme": ((b"authorization", f"Basic {KEY}".encode()),),
    "key without scheme": ((b"authorization", KEY.encode()),),
    "empty bearer": ((b"authorization", b"Bearer "),),
    "bearer of a wrong key": _bearer("mk-wrong-key-0123456789abcdef"),
    "key in a cookie": ((b"cookie", f"x-api-key={KEY}; session={KEY}".encode()),),
    "key in proxy-authorization": ((b"proxy-authorization", f"Bearer {KEY}".encode()),),
    "key in another header": ((b"x-api-token", KEY.encode()),),
    "two different authorizations": (
        (b"authorization", f"Bearer {KEY}".encode()),
        (b"authorization", b"Bearer x"),
    ),
    "good key, bad bearer": ((b"x-api-key", KEY.encode()), *_bearer("x")),
    "jwt in the key header": ((b"x-api-key", tokens.hs256().encode()),),
    "expired jwt": _bearer(tokens.hs256(exp=1_000_000_000, iat=999_999_000)),
    "jwt not yet valid": _bearer(tokens.rs256(nbf=4_000_000_000)),
    "jwt without exp": _bearer(tokens.hs256(exp=None)),
    "jwt without sub": _bearer(tokens.rs256(sub=None)),
    "jwt of another issuer": _bearer(tokens.rs256(iss="https://evil.test")),
    "jwt for another audience": _bearer(tokens.hs256(aud="another-service")),
    "jwt alg none": _bearer(tokens.unsigned()),
    "jwt hs256 keyed with the rsa public key": _bearer(tokens.hs256_with_public_key()),
    "jwt signed by another rsa key": _bearer(tokens.rs256(key=tokens.other_rsa_key())),
    "jwt with an unknown kid": _bearer(tokens.rs256(kid="rotated-away")),
    "jwt with a tampered payload": _bearer(tokens.tampered()),
    "jwt truncated": _bearer(tokens.hs256()[:-4]),
    "cors preflight": (
        (b"origin", b"http://evil.example"),
        (b"access-control-request-method", b"POST"),
    ),
}


def _encode_first_letter(path: str) -> str:
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment[:1].isalpha():
            segments[i] = f"%{ord(segment[0]):02x}" + segment[1:]
            break
    return "/".join(segments)


def _encode_all_letters(path: str) -> str:
    return "".join(f"%{ord(c):02X}" if c.isalpha() else c for c in path)


def bent_paths(path: str) -> list[bytes]:
    """``path`` and the ways of spelling something near it."""
    first, _, rest = path[1:].partition("/")
    spelled = [
        path,
        path + "/",
        "/" + path,
        path.replace("/", "//"),
        f"/{first}/./{rest}" if rest else f"/./{first}",
        f"/x/../{path[1:]}",
        f"/healthz/../{path[1:]}",
        f"/ui/../{path[1:]}",
        f"/ui/ui.js/../../{path[1:]}",
        _encode_first_letter(path),
        _encode_all_letters(path),
        path.upper(),
        path + ";x",
        path.replace("/", "%2f", 2) if rest else path + "%2f",
        f"/healthz%2f..%2f{path[1:]}",
        f"/healthz/..%2f{path[1:]}",
        path + "%00",
        path + "\\",
        path + "/%2e%2e",
        path + "/..",
    ]
    return [p.encode() for p in dict.fromkeys(spelled)]


@dataclass(frozen=True)
class Case:
    method: str
    raw_path: bytes
    credential: str
    #: The query string (a key there is not a credential the gateway reads).
    query: bytes = b""


def cases() -> Iterator[Case]:
    """Every bent path x every method, each with a credential in turn; every credential
    on every canonical path; and the key in the query string."""
    names = itertools.cycle(BAD_CREDENTIALS)
    for route in ROUTES:
        for raw in bent_paths(route):
            for method in METHODS:
                yield Case(method, raw, next(names))
        for name in BAD_CREDENTIALS:
            for method in ("GET", "POST"):
                yield Case(method, route.encode(), name)
        for method in ("GET", "POST"):
            yield Case(method, route.encode(), "none", f"x-api-key={KEY}&token={KEY}".encode())
