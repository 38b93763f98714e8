"""Rate limits, the admission queue and the retry budget."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import Overloaded, RateLimited, problem_response
from gateway.limits import AdmissionQueue, RateLimiter, RetryBudget

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: object, *, turns: int = 1000) -> None:
    """Let other tasks run until ``condition()`` holds (bounded, no sleeping)."""
    for _ in range(turns):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_a_bucket_allows_its_burst_then_says_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.check("alice") for _ in range(3)] == [None, None, None]
    assert limiter.check("alice") == pytest.approx(0.5)
    assert limiter.check("bob") is None  # buckets are per principal
    clock.now += 0.25
    assert limiter.check("alice") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.check("alice") is None
    clock.now += 100
    assert [limiter.check("alice") for _ in range(4)][-1] is not None  # refilled to burst only
    error = RateLimited(retry_after=limiter.check("alice"))
    status, headers, _ = problem_response(error)
    assert status == 429
    assert dict(headers)[b"retry-after"] == b"1"


def test_buckets_are_bounded_and_the_least_recently_used_goes() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, max_keys=100, clock=clock)
    limiter.check("keep")
    for i in range(1000):
        limiter.check(f"p{i}")
        if i % 50 == 0:
            limiter.check("keep")
    assert len(limiter) == 100
    assert limiter.check("keep") is not None  # still remembered, still empty


@pytest.mark.parametrize("args", [(0, 1), (1, 0.5), (1, 1, 0)])
def test_rate_limiter_arguments_are_checked(args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="required"):
        RateLimiter(args[0], args[1], max_keys=int(args[2]) if len(args) > 2 else 10)


async def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    queue = AdmissionQueue(max_concurrent=2, max_queued=1, max_wait=30)
    await queue.acquire()
    await queue.acquire()
    waiter = asyncio.create_task(queue.acquire())
    await until(lambda: queue.queued == 1)
    started = time.perf_counter()
    with pytest.raises(Overloaded) as caught:
        await queue.acquire()
    assert time.perf_counter() - started < 0.05  # measured: no waiting at all
    status, headers, _ = problem_response(caught.value)
    assert (status, dict(headers)[b"retry-after"]) == (503, b"30")
    assert queue.rejected == 1
    queue.release()
    await waiter
    assert (queue.active, queue.queued) == (2, 0)


async def test_a_waiter_past_max_wait_is_refused_and_leaves() -> None:
    queue = AdmissionQueue(max_concurrent=1, max_queued=5, max_wait=0.05)
    async with queue:
        started = time.perf_counter()
        with pytest.raises(Overloaded):
            await queue.acquire()
        assert 0.04 <= time.perf_counter() - started < 1
        assert queue.queued == 0
    assert queue.active == 0


async def test_waiters_are_admitted_in_order() -> None:
    queue = AdmissionQueue(max_concurrent=1, max_queued=10, max_wait=30)
    order: list[int] = []

    async def work(i: int) -> None:
        async with queue:
            order.append(i)

    await queue.acquire()
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(work(i)))
        await until(lambda i=i: queue.queued == i + 1)
    queue.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert (queue.active, queue.queued) == (0, 0)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    queue = AdmissionQueue(max_concurrent=1, max_queued=2, max_wait=30)
    await queue.acquire()
    first = asyncio.create_task(queue.acquire())
    second = asyncio.create_task(queue.acquire())
    await until(lambda: queue.queued == 2)
    first.cancel()
    await until(first.done)
    assert queue.queued == 1
    queue.release()
    await second  # the slot went to the live waiter
    assert (queue.active, queue.queued) == (1, 0)
    queue.release()
    assert queue.active == 0


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_instant_passes_on() -> None:
    queue = AdmissionQueue(max_concurrent=1, max_queued=2, max_wait=30)
    await queue.acquire()
    first = asyncio.create_task(queue.acquire())
    second = asyncio.create_task(queue.acquire())
    await until(lambda: queue.queued == 2)
    queue.release()  # hands the slot to ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert (queue.active, queue.queued) == (1, 0)
    queue.release()
    assert queue.active == 0


def test_the_retry_budget_caps_retries_at_the_ratio() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, min_per_second=0, clock=clock)
    for _ in range(1000):
        budget.record_request()
    granted = sum(budget.try_acquire_retry() for _ in range(1000))
    assert granted == 200
    assert budget.retries / budget.requests == pytest.approx(0.2)


def test_the_floor_lets_a_quiet_service_retry_a_little() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, min_per_second=1, window=10, clock=clock)
    assert sum(budget.try_acquire_retry() for _ in range(100)) == 10


def test_the_window_slides() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.5, min_per_second=0, window=10, slots=10, clock=clock)
    for _ in range(10):
        budget.record_request()
    clock.now += 5
    for _ in range(10):
        budget.record_request()
    assert sum(budget.try_acquire_retry() for _ in range(100)) == 10
    clock.now += 5  # the first ten requests have left the window
    assert budget.requests == 10
    assert not budget.try_acquire_retry()  # the ten retries are still in it
    clock.now += 5
    assert (budget.requests, budget.retries) == (0, 0)
    clock.now += 1000  # a long silence clears everything in one step
    budget.record_request()
    assert (budget.requests, budget.retries) == (1, 0)
