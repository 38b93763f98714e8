"""Gateway security: canonical paths, authentication, credential stripping, HTTP hardening.

Stack the middlewares outermost first::

    app = SecurityHeadersMiddleware(          # CORS preflights, headers on every answer
        BodyLimitMiddleware(                  # 413 before reading an oversized body
            AuthMiddleware(core, Authenticator(settings, http=control_client)),
            max_bytes=...,
        ),
        HeaderSettings(...),
    )
"""

from gateway.security.authenticator import Authenticator, key_fingerprint
from gateway.security.body import BodyLimitMiddleware
from gateway.security.headers import CorsSettings, HeaderSettings, SecurityHeadersMiddleware
from gateway.security.jwks import JwksCache, KeySet, VerificationKey
from gateway.security.middleware import STRIPPED_HEADERS, AuthMiddleware
from gateway.security.paths import encode_path, normalize_path
from gateway.security.settings import ANONYMOUS, AuthSettings, Principal, PrincipalKind

__all__ = [
    "ANONYMOUS",
    "STRIPPED_HEADERS",
    "AuthMiddleware",
    "AuthSettings",
    "Authenticator",
    "BodyLimitMiddleware",
    "CorsSettings",
    "HeaderSettings",
    "JwksCache",
    "KeySet",
    "Principal",
    "PrincipalKind",
    "SecurityHeadersMiddleware",
    "VerificationKey",
    "encode_path",
    "key_fingerprint",
    "normalize_path",
]
