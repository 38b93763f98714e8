"""Whether Consul answers: every call goes through a :class:`ConsulLink`.

It turns py-consul's and the adapter's failures into
:class:`~registry.errors.BackendUnavailable` (503), remembers since when Consul
has been silent (reads are then served from the last answer, see
:meth:`ConsulLink.staleness`) and spaces retries with a jittered backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import consul.exceptions

from registry.backends.consul.http import ConsulUnreachable
from registry.backends.consul.watch import Backoff
from registry.errors import BackendUnavailable

__all__ = ["ConsulLink"]

logger = logging.getLogger("meshgate.registry.consul")
T = TypeVar("T")

# Answers, not silence: Consul is up and refused (a bad token, a bad request).
_REFUSALS = (
    consul.exceptions.ClientError,
    consul.exceptions.BadRequest,
    consul.exceptions.ACLPermissionDenied,
    consul.exceptions.ACLDisabled,
)
_FAILURES = (ConsulUnreachable, consul.exceptions.ConsulException)


class ConsulLink:
    """The state of the connection to one Consul address."""

    def __init__(
        self, addr: str, *, max_backoff: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._addr = addr
        self._clock = clock
        self._backoff = Backoff(cap=max_backoff)
        self._last_answer: float | None = None
        self._down_since: float | None = None
        self.retry_at = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def retry_due(self) -> bool:
        """While down: whether the next call may try Consul again (else answer from memory)."""
        return self._clock() >= self.retry_at

    def staleness(self) -> float:
        """Seconds since Consul last answered, while it does not (0 while it does)."""
        if self._down_since is None or self._last_answer is None:
            return 0.0
        return self._clock() - self._last_answer

    async def call(self, what: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except _REFUSALS as exc:
            raise BackendUnavailable(f"consul refused {what}: {exc}") from None
        except _FAILURES as exc:
            if self._down_since is None:
                self._down_since = self._clock()
                logger.warning("consul at %s is unreachable: %s", self._addr, exc)
            self.retry_at = self._clock() + self._backoff.next_delay()
            raise BackendUnavailable(f"consul is unreachable ({what}): {exc}") from None
        if self._down_since is not None:
            logger.info("consul at %s answers again", self._addr)
            self._down_since = None
        self._backoff.reset()
        self._last_answer = self._clock()
        return result
