"""API keys for writes: who may register, and who owns what they registered."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from registry.errors import Unauthorized

__all__ = ["ApiKeys"]


class ApiKeys:
    """Checks the key of a write and names its owner.

    The owner is a fingerprint of the key, never the key itself, so stored
    records and logs do not hold credentials.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = tuple(k.encode() for k in keys if k)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def owner(self, request: Request) -> str | None:
        """The owner of a write, ``None`` when keys are off; raises Unauthorized."""
        if not self._keys:
            return None
        presented = _presented_key(request)
        if presented is None:
            raise Unauthorized("this registry requires an API key for writes")
        candidate = presented.encode()
        # Compare against every key so timing does not tell which one matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise Unauthorized("the API key is not valid")
        return "key:" + hashlib.sha256(candidate).hexdigest()[:16]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None
