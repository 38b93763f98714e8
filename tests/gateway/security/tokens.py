"""Keys and JSON Web Tokens made in the tests (no fixtures from elsewhere)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.test"
AUDIENCE = "meshgate-gateway"
SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
API_KEY = "mk-valid-key-0123456789abcdef"
RSA_KID = "rsa-1"
EC_KID = "ec-1"


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwks(*, rsa_kid: str = RSA_KID, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The public JWK Set of the test keys."""
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key().public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key().public_key()))
    rsa_jwk.update(kid=rsa_kid, use="sig", alg="RS256")
    ec_jwk.update(kid=EC_KID, use="sig")
    return {"keys": [rsa_jwk, ec_jwk, *(extra or [])]}


def rsa_public_pem() -> bytes:
    return (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


def rs256(kid: str | None = RSA_KID, key: Any = None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**overrides), key or rsa_key(), algorithm="RS256", headers=headers)


def es256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), ec_key(), algorithm="ES256", headers={"kid": EC_KID})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(**overrides: Any) -> str:
    """``alg: none``: a token anyone can make."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims(**overrides)).encode())}."


def hs256_with_public_key(kid: str | None = RSA_KID) -> str:
    """The classic confusion attack: HMAC keyed with the (public) RSA key's PEM."""
    head = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(claims()).encode())}"
    mac = hmac.new(rsa_public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def tampered() -> str:
    """A valid RS256 signature over other claims than the ones shown."""
    header, _, signature = rs256().split(".")
    forged = _b64(json.dumps(claims(sub="admin")).encode())
    return f"{header}.{forged}.{signature}"
