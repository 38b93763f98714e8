"""Authentication settings and the principal a request runs as."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "ANONYMOUS",
    "ASYMMETRIC_ALGORITHMS",
    "AuthSettings",
    "Principal",
    "PrincipalKind",
]

PrincipalKind = Literal["api-key", "jwt", "anonymous"]

#: Asymmetric JWS algorithms the gateway can verify with keys from a JWKS.
ASYMMETRIC_ALGORITHMS = frozenset(
    ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
)
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request runs as. ``id`` is stable per caller and never a credential."""

    id: str
    kind: PrincipalKind
    claims: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False)


#: The principal of public paths, and of every path when no credential is configured.
ANONYMOUS = Principal("anonymous", "anonymous")


@dataclass(frozen=True)
class AuthSettings:
    """Where credentials come from. Authentication is on once any source is set.

    HS256 tokens are checked only against ``jwt_secret``; asymmetric tokens
    only against keys of the JWKS (``jwks`` inline or fetched from
    ``jwks_url``) whose type fits the token's algorithm, so no key is ever read
    as another kind (no HS/RS confusion). ``none`` is never accepted.
    """

    api_keys: tuple[str, ...] = ()
    #: ``(name, key)`` pairs: a named key's principal is ``key:NAME`` (policies can name it).
    named_api_keys: tuple[tuple[str, str], ...] = ()
    #: HS256 secret (at least 32 bytes, RFC 7518 §3.2).
    jwt_secret: str | None = None
    #: A JWK Set given inline, or the URL to fetch one from (cached ``jwks_ttl``).
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None
    #: Asymmetric algorithms accepted with JWKS keys.
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256")
    issuer: str | None = None
    audience: str | None = None
    #: Seconds of clock skew allowed on ``exp``/``nbf``/``iat``.
    leeway: float = 30.0
    jwks_ttl: float = 300.0
    #: At most one JWKS fetch per this many seconds (unknown ``kid``s, failures).
    jwks_min_refresh: float = 30.0
    #: Canonical paths served without authentication (exact matches).
    public_paths: frozenset[str] = frozenset(("/healthz", "/readyz"))
    #: Verified tokens remembered (until they expire) so a reused token costs a lookup.
    token_cache_size: int = 4096

    def __post_init__(self) -> None:
        if any(not key.strip() or key != key.strip() for key in self.api_keys):
            raise ValueError("API keys must be non-empty, without surrounding blanks")
        if any(not _KEY_NAME.fullmatch(name) for name, _ in self.named_api_keys):
            raise ValueError("API key names must match [A-Za-z0-9_.-]{1,64}")
        if any(not key.strip() or key != key.strip() for _, key in self.named_api_keys):
            raise ValueError("API keys must be non-empty, without surrounding blanks")
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < 32:
            raise ValueError("jwt_secret must be at least 32 bytes long")
        unknown = set(self.jwt_algorithms) - ASYMMETRIC_ALGORITHMS
        if unknown:
            raise ValueError(f"not asymmetric JWS algorithms: {sorted(unknown)}")
        if self.jwt_enabled and not (self.issuer and self.audience):
            raise ValueError("JWT authentication needs both issuer and audience")
        if self.leeway < 0 or self.jwks_ttl <= 0 or self.jwks_min_refresh < 0:
            raise ValueError("leeway, jwks_ttl and jwks_min_refresh must be positive")

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwks or self.jwks_url)

    @property
    def required(self) -> bool:
        """Whether requests to non-public paths must authenticate."""
        return bool(self.api_keys or self.named_api_keys) or self.jwt_enabled
