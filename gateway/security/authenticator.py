"""Who is calling: API keys and JWT bearer tokens, checked the same way on every path.

Failures raise :class:`~gateway.errors.Unauthorized` whose challenge carries
only RFC 6750's codes: none when no credential came, ``invalid_request`` when
it was malformed or ambiguous, ``invalid_token`` otherwise; never which check
failed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

import httpx
import jwt
from jwt.exceptions import PyJWTError

from gateway.errors import Unauthorized
from gateway.security.jwks import JwksCache, KeySet
from gateway.security.settings import ANONYMOUS, AuthSettings, Principal

__all__ = ["Authenticator", "key_fingerprint"]

_BEARER = b"bearer"


def key_fingerprint(key: bytes) -> str:
    """The principal id of an API key (as the registry's owner ids): never the key."""
    return "key:" + hashlib.sha256(key).hexdigest()[:16]


class Authenticator:
    """Checks credentials from request headers and names the principal.

    Everything that can be is computed here, once: key digests and their
    principals, the JWT decoder, the key sets. A token verified once is
    remembered (bounded, until it expires or the key set changes), so a
    client that reuses its token pays a dictionary lookup.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.required = settings.required
        self.public_paths = settings.public_paths
        self._keys = tuple(
            (hashlib.sha256(k.encode()).digest(), Principal(key_fingerprint(k.encode()), "api-key"))
            for k in settings.api_keys
        ) + tuple(
            (hashlib.sha256(k.encode()).digest(), Principal("key:" + name, "api-key"))
            for name, k in settings.named_api_keys
        )
        self._secret = settings.jwt_secret.encode() if settings.jwt_secret else None
        self._static = KeySet.parse(settings.jwks) if settings.jwks is not None else None
        self._jwks: JwksCache | None = None
        if settings.jwks_url:
            if http is None:
                raise ValueError("jwks_url needs the control-plane httpx.AsyncClient")
            self._jwks = JwksCache(
                settings.jwks_url,
                http,
                ttl=settings.jwks_ttl,
                min_refresh=settings.jwks_min_refresh,
                clock=clock,
            )
        has_keys = self._static is not None or self._jwks is not None
        self._asymmetric = frozenset(settings.jwt_algorithms) if has_keys else frozenset()
        self._jwt_enabled = settings.jwt_enabled
        self._decoder = jwt.PyJWT()
        # Times are checked here, against the injectable clock; PyJWT checks the rest.
        self._options: Any = {
            "require": ["exp", "sub"],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        }
        self._wall = wall_clock
        self._verified: dict[str, tuple[Principal, float, int]] = {}

    @property
    def jwks(self) -> JwksCache | None:
        return self._jwks

    def is_public(self, path: str) -> bool:
        """Whether a canonical path is served without authentication."""
        return path in self.public_paths or not self.required

    async def warm(self) -> None:
        """Fetch the JWKS now (call from the lifespan) rather than on the first token."""
        if self._jwks is not None:
            await self._jwks.refresh()

    async def authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> Principal:
        """The principal of raw ASGI ``headers``; raises Unauthorized."""
        authorization: bytes | None = None
        api_key: bytes | None = None
        duplicate = False
        for name, value in headers:
            name = name.lower()
            if name == b"authorization":
                duplicate |= authorization is not None
                authorization = value
            elif name == b"x-api-key":
                duplicate |= api_key is not None
                api_key = value
        if duplicate:
            raise Unauthorized(error="invalid_request")
        return await self.authenticate_credentials(authorization, api_key)

    async def authenticate_credentials(
        self, authorization: bytes | None, api_key: bytes | None
    ) -> Principal:
        """The principal of an ``Authorization`` and an ``X-API-Key`` value."""
        if not self.required:
            return ANONYMOUS
        token: bytes | None = None
        bearer = False
        if authorization is not None:
            scheme, _, rest = authorization.strip().partition(b" ")
            if scheme.lower() == _BEARER:
                token, bearer = rest.strip(), True
                if not token:
                    raise Unauthorized(error="invalid_request")
        if token is None and api_key is not None:
            token = api_key.strip()
        if not token:
            raise Unauthorized()
        if self._keys:
            principal = self._match_key(token)
            if principal is not None:
                return principal
        if bearer and self._jwt_enabled and token.count(b".") == 2:
            return await self._verify_jwt(token)
        raise Unauthorized(error="invalid_token")

    def _match_key(self, token: bytes) -> Principal | None:
        digest = hashlib.sha256(token).digest()
        found: Principal | None = None
        # Every key is compared, so the time taken does not tell which matched.
        for key_digest, principal in self._keys:
            if hmac.compare_digest(digest, key_digest):
                found = principal
        return found

    def _generation(self) -> int:
        return self._jwks.generation if self._jwks is not None else 0

    async def _verify_jwt(self, raw: bytes) -> Principal:
        try:
            token = raw.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthorized(error="invalid_token") from None
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires, generation = cached
            if self._wall() < expires and generation == self._generation():
                return principal
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise Unauthorized(error="invalid_token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(kid, str | None):
            raise Unauthorized(error="invalid_token")
        key: Any
        if alg == "HS256" and self._secret is not None:
            key = self._secret
        elif isinstance(alg, str) and alg in self._asymmetric:
            found = self._static.select(kid, alg) if self._static is not None else None
            if found is None and self._jwks is not None:
                found = await self._jwks.select(kid, alg)
            if found is None:
                raise Unauthorized(error="invalid_token")
            key = found.key
        else:  # "none", HS256 without a secret, anything not allowed
            raise Unauthorized(error="invalid_token")
        settings = self.settings
        try:
            claims = self._decoder.decode(
                token,
                key,
                algorithms=[alg],
                options=self._options,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
            )
        except PyJWTError:
            raise Unauthorized(error="invalid_token") from None
        subject = claims.get("sub")
        valid_until = self._valid_until(claims)
        if valid_until is None or not isinstance(subject, str) or not subject:
            raise Unauthorized(error="invalid_token")
        principal = Principal("jwt:" + subject, "jwt", MappingProxyType(claims))
        self._remember(token, principal, valid_until)
        return principal

    def _valid_until(self, claims: dict[str, Any]) -> float | None:
        """When the token stops being valid (``exp`` + leeway); None if it is not now."""
        now, leeway = self._wall(), self.settings.leeway
        times = [claims.get(name) for name in ("exp", "nbf", "iat")]
        if any(
            t is not None and (isinstance(t, bool) or not isinstance(t, int | float)) for t in times
        ):
            return None
        exp, nbf, iat = times
        if exp is None or exp + leeway <= now:
            return None
        if (nbf is not None and nbf > now + leeway) or (iat is not None and iat > now + leeway):
            return None
        return float(exp) + leeway

    def _remember(self, token: str, principal: Principal, expires: float) -> None:
        if self.settings.token_cache_size <= 0:
            return
        if len(self._verified) >= self.settings.token_cache_size:
            # Oldest first (dicts keep insertion order): O(1) eviction.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, expires, self._generation())
