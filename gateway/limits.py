"""Admission, rate limits and the retry budget: O(1) per request, clocks injectable.

* :class:`RateLimiter`: a token bucket per principal, bounded memory (LRU).
* :class:`AdmissionQueue`: at most ``max_concurrent`` requests run, at most
  ``max_queued`` wait in FIFO order for at most ``max_wait`` seconds; beyond
  that :class:`~gateway.errors.Overloaded` at once. Never unbounded waiting.
* :class:`RetryBudget`: retries only while they stay within ``ratio`` of the
  requests of a sliding window, plus a small floor (Finagle/Envoy style), so
  retries cannot multiply load when upstreams are failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from types import TracebackType

from gateway.errors import Overloaded

__all__ = ["AdmissionQueue", "RateLimiter", "RetryBudget"]

Clock = Callable[[], float]


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second, bursts of ``burst``.

    At most ``max_keys`` buckets are kept; the least recently used goes first.
    A bucket idle for ``burst / rate`` seconds is full again, so dropping it
    loses nothing; ``max_keys`` should exceed the callers active in that time.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 65536,
        clock: Clock = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> [tokens, last refill time]
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, cost: float = 1.0) -> float | None:
        """Take ``cost`` tokens: ``None`` if allowed, else seconds until it would be."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
            bucket = buckets[key] = [self.burst, now]
        else:
            buckets.move_to_end(key)
            elapsed = now - bucket[1]
            if elapsed > 0:
                bucket[0] = min(self.burst, bucket[0] + elapsed * self.rate)
                bucket[1] = now
        if bucket[0] >= cost:
            bucket[0] -= cost
            return None
        return (cost - bucket[0]) / self.rate


class AdmissionQueue:
    """A bounded admission gate; ``async with queue:`` around the work it admits.

    The fast path (a free slot, nobody waiting) allocates nothing. A released
    slot is handed directly to the oldest waiter. A waiter that is cancelled or
    times out leaves the queue; if it was handed a slot in that same instant,
    the slot passes on, so no slot is ever lost.
    """

    def __init__(
        self,
        max_concurrent: int,
        max_queued: int,
        max_wait: float,
        *,
        retry_after: float | None = None,
    ) -> None:
        if max_concurrent < 1 or max_queued < 0 or max_wait <= 0:
            raise ValueError("max_concurrent >= 1, max_queued >= 0, max_wait > 0 are required")
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.max_wait = max_wait
        #: The ``Retry-After`` of an Overloaded answer (default: ``max_wait``, >= 1 s).
        self.retry_after = retry_after if retry_after is not None else max(1.0, max_wait)
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.rejected = 0

    @property
    def active(self) -> int:
        return self._active

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a free slot if there is one and nobody waits (no coroutine made)."""
        if self._active < self.max_concurrent and not self._waiters:
            self._active += 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting up to ``max_wait``; raises Overloaded."""
        if self.try_acquire():
            return
        if len(self._waiters) >= self.max_queued:
            self.rejected += 1
            raise Overloaded(retry_after=self.retry_after)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as we gave up: pass it on
            else:
                self._remove(waiter)
            if isinstance(exc, TimeoutError):
                self.rejected += 1
                raise Overloaded(retry_after=self.retry_after) from None
            raise

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves; _active is unchanged
                return
        self._active -= 1

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class RetryBudget:
    """Retries allowed while retries <= ``ratio`` x requests over ``window`` seconds.

    Plus a floor of ``min_per_second`` retries per second, so a quiet service
    can still retry. Counts live in a ring of ``slots`` buckets: each call
    clears only the buckets that expired since the last one.
    """

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        min_per_second: float = 1.0,
        window: float = 10.0,
        slots: int = 10,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 0 <= ratio <= 1 or min_per_second < 0 or window <= 0 or slots < 1:
            raise ValueError("0 <= ratio <= 1, min_per_second >= 0, window > 0, slots >= 1")
        self.ratio = ratio
        self._floor = min_per_second * window
        self._width = window / slots
        self._clock = clock
        self._requests = [0] * slots
        self._retries = [0] * slots
        self._total_requests = 0
        self._total_retries = 0
        self._slot = math.floor(clock() / self._width)

    def _advance(self) -> int:
        current = math.floor(self._clock() / self._width)
        n = len(self._requests)
        if current != self._slot:
            for tick in range(self._slot + 1, min(current, self._slot + n) + 1):
                i = tick % n
                self._total_requests -= self._requests[i]
                self._total_retries -= self._retries[i]
                self._requests[i] = self._retries[i] = 0
            self._slot = current
        return current % n

    def record_request(self) -> None:
        """Count one original request (not a retry)."""
        i = self._advance()
        self._requests[i] += 1
        self._total_requests += 1

    def try_acquire_retry(self) -> bool:
        """Whether one more retry fits the budget; counts it when it does."""
        i = self._advance()
        if self._total_retries + 1 > self.ratio * self._total_requests + self._floor:
            return False
        self._retries[i] += 1
        self._total_retries += 1
        return True

    @property
    def requests(self) -> int:
        """Requests in the window now."""
        self._advance()
        return self._total_requests

    @property
    def retries(self) -> int:
        """Retries in the window now."""
        self._advance()
        return self._total_retries
