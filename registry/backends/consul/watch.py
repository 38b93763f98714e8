"""Blocking queries under the index rules of Consul's documentation.

https://developer.hashicorp.com/consul/api-docs/features/blocking asks clients
to reset the index when it goes backwards, to treat an index of 0 as 1, to
rate-limit loops (an index may move without a change) and to add jitter. This
module holds those rules and the one round of blocking queries a watch makes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from registry.backends.consul.mapping import Layout

__all__ = ["Backoff", "IndexCursor", "block_once", "first_of", "jittered_wait"]

T = TypeVar("T")


@dataclass
class IndexCursor:
    """The index a blocking query is sent with; 0 means "do not block"."""

    value: int = 0

    def advance(self, reported: int | str | None) -> bool:
        """Take the index of an answer; return False when it went backwards (a reset)."""
        index = max(int(reported or 0), 1)  # 0 is never valid: treat it as 1
        if index < self.value:
            self.value = 0  # the store went back (a restore, a new cluster): start over
            return False
        self.value = index
        return True


def jittered_wait(seconds: float) -> str:
    """A ``wait`` parameter up to ``seconds`` less a random sixteenth, so watchers spread out."""
    jittered = seconds * random.uniform(15 / 16, 1.0)  # noqa: S311 - not for security
    return f"{max(round(jittered * 1000), 1)}ms"


@dataclass
class Backoff:
    """Exponential delays with full jitter while Consul cannot be reached."""

    base: float = 0.05
    cap: float = 2.0
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - not for security

    def reset(self) -> None:
        self.attempt = 0


async def first_of(*calls: Callable[[], Awaitable[T]]) -> T:
    """Run blocking queries side by side; return the first answer and cancel the rest."""
    tasks = [asyncio.ensure_future(call()) for call in calls]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


Call = Callable[[str, Awaitable[Any]], Awaitable[Any]]


async def block_once(
    client: Any,
    layout: Layout,
    service: str | None,
    cursors: tuple[IndexCursor, IndexCursor],
    wait: float,
    call: Call,
) -> None:
    """One round of blocking queries on a py-consul ``client``; returns when Consul answers.

    A service watches its own health and KV records; everything else watches
    every check and every record. Until both cursors are known the round
    does not block (it learns them).
    """
    first, second = cursors

    async def checks() -> None:
        query = (
            client.health.service(service, **_blocking(first, wait))
            if service is not None
            else client.health.state("any", **_blocking(first, wait))
        )
        index, _ = await call("watch", query)
        first.advance(index)

    async def records() -> None:
        prefix = layout.instances(service) if service else layout.prefix + "/"
        index, _ = await call(
            "watch", client.kv.get(prefix, recurse=True, **_blocking(second, wait))
        )
        second.advance(index)

    if not first.value or not second.value:
        await asyncio.gather(checks(), records())
    else:
        await first_of(checks, records)


def _blocking(cursor: IndexCursor, wait: float) -> dict[str, Any]:
    if not cursor.value:
        return {}
    return {"index": cursor.value, "wait": jittered_wait(wait)}
