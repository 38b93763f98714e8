"""Typed settings of the ``consul`` backend; the CLI fills them from flags and env."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["Consistency", "ConsulSettings"]

Consistency = Literal["default", "consistent", "stale"]
_CONSISTENCY: tuple[Consistency, ...] = ("default", "consistent", "stale")


@dataclass(frozen=True)
class ConsulSettings:
    """Where Consul is and how to talk to it.

    ``token`` is never shown in ``repr`` (and so never in logs).
    """

    addr: str = "http://127.0.0.1:8500"
    token: str | None = field(default=None, repr=False)
    datacenter: str | None = None
    consistency: Consistency = "default"
    #: KV prefix under which cards, tool lists and owners live.
    kv_prefix: str = "meshgate"
    #: Timeout of a non-blocking request (connect and read).
    request_timeout: float = 5.0
    #: Longest blocking query sent to Consul; callers' waits are cut into these.
    max_block: float = 60.0
    #: A blocking loop that wakes without a change waits this long before re-asking.
    min_requery: float = 0.05
    #: Backoff cap while Consul cannot be reached.
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.addr if "//" in self.addr else f"http://{self.addr}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"consul address must be http(s)://host:port, not {self.addr!r}")
        if self.consistency not in _CONSISTENCY:
            raise ValueError(f"consul consistency must be one of {_CONSISTENCY}")
        if not self.kv_prefix or self.kv_prefix.startswith("/") or "//" in self.kv_prefix:
            raise ValueError(f"invalid consul KV prefix {self.kv_prefix!r}")

    @property
    def scheme(self) -> str:
        return urlsplit(self._url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self._url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self._url)
        return parts.port or (443 if parts.scheme == "https" else 8500)

    @property
    def _url(self) -> str:
        return self.addr if "//" in self.addr else f"http://{self.addr}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> ConsulSettings:
        """From ``BackendOptions.settings`` (``addr``, ``token``, ``datacenter``, ...)."""
        known = {"addr", "token", "datacenter", "consistency", "kv_prefix"}
        if unknown := set(values) - known:
            raise ValueError(f"unknown consul settings {sorted(unknown)}; known: {sorted(known)}")
        consistency = values.get("consistency", "default")
        if consistency not in _CONSISTENCY:
            raise ValueError(
                f"consul consistency must be one of {_CONSISTENCY}, not {consistency!r}"
            )
        return cls(
            addr=values.get("addr") or cls.addr,
            token=values.get("token") or None,
            datacenter=values.get("datacenter") or None,
            consistency=consistency,
            kv_prefix=values.get("kv_prefix") or cls.kv_prefix,
        )
