"""The authenticator on its own: keys, JWT checks, the JWKS cache and its limits."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.errors import Unauthorized, problem_response
from gateway.security import ANONYMOUS, Authenticator, AuthSettings, KeySet, key_fingerprint
from tests.gateway.security import tokens
from tests.support.live import serve

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Idp:
    """A JWKS endpoint whose document and health the test controls."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = tokens.jwks()
        self.failing = False
        self.hits = 0
        self.app = Starlette(routes=[Route("/jwks.json", self.jwks)])

    async def jwks(self, request: Request) -> JSONResponse:
        self.hits += 1
        if self.failing:
            return JSONResponse({"error": "down"}, status_code=500)
        return JSONResponse(self.document)


@contextlib.asynccontextmanager
async def jwks_authenticator(
    idp: Idp, clock: Clock, **settings: Any
) -> AsyncIterator[Authenticator]:
    async with serve(idp.app) as url, httpx.AsyncClient(timeout=5) as http:
        settings = {"issuer": tokens.ISSUER, "audience": tokens.AUDIENCE, **settings}
        yield Authenticator(
            AuthSettings(jwks_url=url + "/jwks.json", **settings), http=http, clock=clock
        )


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def refused(authenticator: Authenticator, headers: list[tuple[bytes, bytes]]) -> str:
    """The ``WWW-Authenticate`` challenge of a refusal."""
    with pytest.raises(Unauthorized) as caught:
        await authenticator.authenticate(headers)
    return dict(problem_response(caught.value)[1])[b"www-authenticate"].decode()


async def test_api_keys_name_a_fingerprint_and_challenges_follow_rfc_6750() -> None:
    auth = Authenticator(AuthSettings(api_keys=(tokens.API_KEY, "another-key-0123456789")))
    principal = await auth.authenticate([(b"x-api-key", tokens.API_KEY.encode())])
    assert principal.kind == "api-key"
    assert principal.id == key_fingerprint(tokens.API_KEY.encode())
    assert tokens.API_KEY not in principal.id
    assert await refused(auth, []) == 'Bearer realm="meshgate"'
    invalid = 'Bearer realm="meshgate", error="invalid_token"'
    assert await refused(auth, [(b"x-api-key", b"nope")]) == invalid
    assert await refused(auth, bearer(tokens.hs256())) == invalid  # no JWT source configured
    twice = [(b"x-api-key", tokens.API_KEY.encode())] * 2
    assert await refused(auth, twice) == 'Bearer realm="meshgate", error="invalid_request"'


async def test_without_credential_sources_everyone_is_anonymous() -> None:
    auth = Authenticator(AuthSettings())
    assert not auth.required
    assert await auth.authenticate(bearer("anything")) is ANONYMOUS
    assert auth.is_public("/v1/agents")


@pytest.mark.parametrize(
    "settings",
    [
        {"jwt_secret": "short"},
        {"jwt_secret": tokens.SECRET},  # no issuer/audience
        {"jwks": {"keys": []}, "issuer": "i", "audience": "a", "jwt_algorithms": ("none",)},
        {"jwks": {"keys": []}, "issuer": "i", "audience": "a", "jwt_algorithms": ("HS256",)},
        {"api_keys": (" padded ",)},
    ],
)
def test_unsafe_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"jwt_secret|issuer|asymmetric|blanks"):
        AuthSettings(**settings)


def test_a_jwks_url_needs_the_control_plane_client() -> None:
    with pytest.raises(ValueError, match="httpx"):
        Authenticator(AuthSettings(jwks_url="http://idp/jwks", issuer="i", audience="a"))


async def test_hmac_is_refused_when_only_asymmetric_keys_are_configured() -> None:
    auth = Authenticator(
        AuthSettings(jwks=tokens.jwks(), issuer=tokens.ISSUER, audience=tokens.AUDIENCE)
    )
    assert (await auth.authenticate(bearer(tokens.rs256()))).id == "jwt:alice"
    for token in (tokens.hs256_with_public_key(), tokens.hs256_with_public_key(kid=None)):
        await refused(auth, bearer(token))
    await refused(auth, bearer(tokens.unsigned()))


def test_key_sets_keep_only_public_signing_keys_that_fit() -> None:
    oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}
    private = json.loads(
        __import__("jwt").algorithms.RSAAlgorithm.to_jwk(tokens.other_rsa_key())
    ) | {"kid": "priv"}
    enc = dict(tokens.jwks()["keys"][0], kid="enc", use="enc")
    keys = KeySet.parse(tokens.jwks(extra=[oct_key, private, enc, {"kty": "RSA"}, "junk"]))
    assert {k.kid for k in keys.keys} == {tokens.RSA_KID, tokens.EC_KID}
    assert keys.select(tokens.RSA_KID, "RS256") is not None
    assert keys.select(tokens.RSA_KID, "PS256") is None  # the JWK pins alg RS256
    assert keys.select(tokens.EC_KID, "ES384") is None  # P-256 key, P-384 algorithm
    assert keys.select(tokens.EC_KID, "RS256") is None
    assert keys.select(None, "ES256") is not None  # the only fitting key
    with pytest.raises(ValueError, match="JWK Set"):
        KeySet.parse({"no": "keys"})


async def test_times_are_checked_against_the_clock_including_cached_tokens() -> None:
    now = time.time()
    wall = Clock(now)
    auth = Authenticator(
        AuthSettings(
            jwt_secret=tokens.SECRET, issuer=tokens.ISSUER, audience=tokens.AUDIENCE, leeway=5
        ),
        wall_clock=wall,
    )
    token = tokens.hs256(exp=int(now) + 60)
    assert (await auth.authenticate(bearer(token))).id == "jwt:alice"
    wall.now = now + 64  # within the leeway, served from the cache
    assert (await auth.authenticate(bearer(token))).id == "jwt:alice"
    wall.now = now + 66
    await refused(auth, bearer(token))
    wall.now = now
    early = tokens.hs256(nbf=int(now) + 30)
    await refused(auth, bearer(early))
    wall.now = now + 31
    assert (await auth.authenticate(bearer(early))).kind == "jwt"
    await refused(auth, bearer(tokens.hs256(iat=int(now) + 3600)))
    await refused(auth, bearer(tokens.hs256(exp="soon")))


async def test_jwks_is_cached_and_refetched_after_its_ttl() -> None:
    idp, clock = Idp(), Clock(1000.0)
    async with jwks_authenticator(idp, clock, jwks_ttl=60, jwks_min_refresh=10) as auth:
        await auth.warm()
        for _ in range(5):
            await auth.authenticate(bearer(tokens.rs256(sub=f"u{_}")))
        assert idp.hits == 1
        clock.now += 61
        await auth.authenticate(bearer(tokens.es256()))
        assert idp.hits == 2


async def test_unknown_kids_refresh_at_most_once_per_interval() -> None:
    idp, clock = Idp(), Clock(1000.0)
    async with jwks_authenticator(idp, clock, jwks_min_refresh=30) as auth:
        await auth.warm()
        old = tokens.rs256(sub="before-rotation")
        assert (await auth.authenticate(bearer(old))).id == "jwt:before-rotation"
        for i in range(20):
            await refused(auth, bearer(tokens.rs256(kid=f"random-{i}")))
        assert idp.hits == 1  # just fetched: too soon to fetch again
        clock.now += 30
        for i in range(20):
            await refused(auth, bearer(tokens.rs256(kid=f"random-{i}")))
        assert idp.hits == 2  # one refresh for all twenty
        # The IdP rotates to a new kid; it is picked up once the interval has passed.
        idp.document = tokens.jwks(rsa_kid="rsa-2")
        rotated = tokens.rs256(kid="rsa-2")
        await refused(auth, bearer(rotated))
        clock.now += 30
        assert (await auth.authenticate(bearer(rotated))).id == "jwt:alice"
        assert idp.hits == 3
        # The old kid is gone with the rotation, and so is the token cached under it.
        await refused(auth, bearer(old))


async def test_concurrent_unknown_kids_share_one_fetch() -> None:
    idp, clock = Idp(), Clock(1000.0)
    async with jwks_authenticator(idp, clock) as auth:
        results: list[str] = []

        async def call() -> None:
            results.append((await auth.authenticate(bearer(tokens.rs256()))).id)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
        assert results == ["jwt:alice"] * 10
        assert idp.hits == 1


async def test_a_failing_idp_keeps_the_last_good_keys() -> None:
    idp, clock = Idp(), Clock(1000.0)
    async with jwks_authenticator(idp, clock, jwks_ttl=60, jwks_min_refresh=10) as auth:
        await auth.warm()
        idp.failing = True
        clock.now += 61
        assert (await auth.authenticate(bearer(tokens.rs256(sub="x")))).id == "jwt:x"
        assert idp.hits == 2
        await auth.authenticate(bearer(tokens.rs256(sub="y")))
        assert idp.hits == 2  # the failure is retried only after the minimum interval
