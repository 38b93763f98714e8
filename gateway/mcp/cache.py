"""Cached results of upstream tools that say calling them twice changes nothing.

Only tools annotated both ``readOnlyHint`` and ``idempotentHint`` are cached,
and only results that are not errors. A result is keyed by the service, the
upstream tool and the canonical arguments (sorted keys, compact JSON, hashed),
never by the caller: the gateway does not forward the caller's credentials, so
an upstream cannot answer two callers differently. The value is the result
object as compact JSON, the same bytes both ``/mcp`` paths relay.

Two stores: a bounded LRU in this process, or Redis (``redis://...``) shared by
every gateway. When Redis cannot be reached calls go upstream uncached: the
failure is logged once, counted, and Redis is left alone for a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.metrics import GatewayMetrics

__all__ = ["CacheSettings", "MemoryStore", "RedisStore", "ResultCache", "cache_key"]

logger = logging.getLogger("meshgate.gateway.mcp.cache")

_PREFIX = "meshgate:mcp:result:"
_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class CacheSettings:
    """The result cache of ``/mcp``, in memory unless ``url`` names Redis.

    Off unless asked for: code that builds a gateway gets plain pass-through;
    ``meshgate gateway`` turns it on unless given ``--no-cache``.
    """

    enabled: bool = False
    #: Seconds a result stays fresh.
    ttl: float = 30.0
    #: ``redis://host:port/db`` (or ``rediss://``); None keeps results in this process.
    url: str | None = None
    #: Results the in-memory store keeps (least recently used go first).
    max_entries: int = 4096
    #: Larger results are not cached.
    max_value_bytes: int = 256 * 1024
    #: How long one Redis operation may take before the call goes on uncached.
    redis_timeout: float = 0.25
    #: After a Redis failure, how long to go without it.
    redis_backoff: float = 5.0

    def __post_init__(self) -> None:
        if not self.ttl > 0:
            raise ValueError("the cache TTL must be a positive number of seconds")
        if self.url is not None and self.url.partition("://")[0] not in _SCHEMES:
            raise ValueError("the cache URL must be redis://, rediss:// or unix://")


def cache_key(service: str, tool: str, arguments: Mapping[str, Any]) -> str:
    """The key of one call: a hash of service, tool and the canonical arguments."""
    canonical = json.dumps(
        [service, tool, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """A bounded LRU whose entries expire."""

    def __init__(self, max_entries: int, clock: Any = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisStore:
    """Results in Redis (``SET key value PX ttl``), shared by every gateway using it."""

    def __init__(self, url: str, timeout: float) -> None:
        import redis.asyncio as redis  # the optional `redis` extra

        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(_PREFIX + key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(_PREFIX + key, value, px=max(1, int(ttl * 1000)))

    async def aclose(self) -> None:
        await self._redis.aclose()


class ResultCache:
    """Looks results up and stores them, counting hits, misses and store errors."""

    def __init__(self, settings: CacheSettings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self._metrics = metrics
        self.store: Store = (
            RedisStore(settings.url, settings.redis_timeout)
            if settings.url
            else MemoryStore(settings.max_entries)
        )
        self._down_until = float("-inf")
        self._warned = False

    async def get(self, tool: str, key: str) -> bytes | None:
        """The cached result for ``key`` (``tool`` is the public name, for the metrics)."""
        value: bytes | None = None
        if self._usable():
            try:
                value = await self.store.get(key)
            except Exception as exc:
                self._failed(exc)
            else:
                self._recovered()
        if value is None:
            self._metrics.mcp_cache_misses(tool).inc()
        else:
            self._metrics.mcp_cache_hits(tool).inc()
        return value

    async def put(self, key: str, result: bytes) -> None:
        """Keep ``result`` (a successful tool result as JSON) for the configured TTL."""
        if len(result) > self.settings.max_value_bytes or not self._usable():
            return
        try:
            await self.store.set(key, result, self.settings.ttl)
        except Exception as exc:
            self._failed(exc)

    async def aclose(self) -> None:
        try:
            await self.store.aclose()
        except Exception as exc:  # closing a store that never connected
            logger.debug("result cache close: %r", exc)

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _recovered(self) -> None:
        if self._warned:
            self._warned = False
            logger.warning("MCP result cache available again")

    def _failed(self, exc: Exception) -> None:
        self._metrics.mcp_cache_errors().inc()
        self._down_until = time.monotonic() + self.settings.redis_backoff
        if not self._warned:  # once: a down Redis must not flood the log
            self._warned = True
            logger.warning(
                "MCP result cache unavailable, calls go upstream uncached: %s",
                type(exc).__name__,
            )
