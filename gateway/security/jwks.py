"""JSON Web Key Sets: parsed once, fetched asynchronously, cached with a TTL.

A key is used only for the algorithms its type fits (RSA for RS*/PS*, EC on
the matching curve for ES*, OKP for EdDSA) and, when the JWK names an ``alg``,
only for that one. Symmetric (``oct``) and private keys in a set are ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import PyJWTError

__all__ = ["JwksCache", "KeySet", "VerificationKey"]

log = logging.getLogger(__name__)

# alg -> (kty, crv or None when any curve of the type will do).
_FITS: dict[str, tuple[str, str | None]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}
# The PyJWT algorithm whose from_jwk reads a key of each type.
_READER = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key of a set, ready for signature checks."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    key: Any

    def fits(self, alg: str) -> bool:
        kty, crv = _FITS.get(alg, ("", None))
        return (
            self.kty == kty
            and (crv is None or self.crv == crv)
            and (self.alg is None or self.alg == alg)
        )


class KeySet:
    """An immutable set of verification keys, looked up by ``kid`` in O(1)."""

    def __init__(self, keys: tuple[VerificationKey, ...] = ()) -> None:
        self.keys = keys
        self._by_kid = {k.kid: k for k in keys if k.kid is not None}

    @classmethod
    def parse(cls, document: Any) -> KeySet:
        """Read a JWK Set document; keys that cannot be used are skipped."""
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK Set")
        algorithms = get_default_algorithms()
        keys: list[VerificationKey] = []
        for jwk in document["keys"]:
            if not isinstance(jwk, Mapping) or jwk.get("use", "sig") != "sig" or "d" in jwk:
                continue
            kty = jwk.get("kty")
            reader = _READER.get(kty) if isinstance(kty, str) else None
            if reader is None:
                continue
            try:
                key = algorithms[reader].from_jwk(dict(jwk))
            except (PyJWTError, ValueError, TypeError, KeyError):
                log.warning("skipping a JWK that cannot be read (kid %r)", jwk.get("kid"))
                continue
            kid, crv, alg = jwk.get("kid"), jwk.get("crv"), jwk.get("alg")
            keys.append(
                VerificationKey(
                    kid=kid if isinstance(kid, str) else None,
                    kty=str(kty),
                    crv=crv if isinstance(crv, str) else None,
                    alg=alg if isinstance(alg, str) else None,
                    key=key,
                )
            )
        return cls(tuple(keys))

    def select(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for a token header: by ``kid``, or the only fitting key without one."""
        if kid is not None:
            key = self._by_kid.get(kid)
            return key if key is not None and key.fits(alg) else None
        fitting = [k for k in self.keys if k.fits(alg)]
        return fitting[0] if len(fitting) == 1 else None

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid


class JwksCache:
    """A JWKS fetched from ``url`` with the control-plane client, cached ``ttl`` seconds.

    An unknown ``kid`` triggers a refresh, but at most one fetch happens per
    ``min_refresh`` seconds (so random ``kid``s cannot make the gateway hammer
    the identity provider); concurrent callers share one fetch. A failed
    fetch keeps the last good set.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refresh: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._clock = clock
        self._keys = KeySet()
        self._expires = float("-inf")
        self._last_attempt = float("-inf")
        self._lock = anyio.Lock()
        #: Bumped whenever the key set changes (token caches are keyed by it).
        self.generation = 0
        self.fetches = 0

    @property
    def keys(self) -> KeySet:
        return self._keys

    async def select(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for a token header, fetching the set when stale or ``kid`` unknown."""
        now = self._clock()
        if now >= self._expires:
            await self.refresh(min_interval=self._min_refresh)
        key = self._keys.select(kid, alg)
        if key is None and kid is not None and kid not in self._keys:
            await self.refresh(min_interval=self._min_refresh)
            key = self._keys.select(kid, alg)
        return key

    async def refresh(self, *, min_interval: float = 0.0) -> bool:
        """Fetch the set now (unless fetched within ``min_interval``); True on success."""
        requested = self._clock()
        async with self._lock:
            now = self._clock()
            if self._last_attempt >= requested or now - self._last_attempt < min_interval:
                return False  # someone else just fetched (or it is too soon to retry)
            self._last_attempt = now
            self.fetches += 1
            try:
                response = await self._http.get(self.url, headers={"accept": "application/json"})
                response.raise_for_status()
                keys = KeySet.parse(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("JWKS fetch from %s failed: %s", self.url, type(exc).__name__)
                self._expires = now + self._min_refresh
                return False
            self._keys = keys
            self.generation += 1
            self._expires = now + self._ttl
            return True
