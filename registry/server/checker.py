"""Active checks: probe every instance with its own protocol, on its interval.

Probes run concurrently under a bound and never on the request path; the
scheduler only spawns them. Each probe re-checks the instance URL against the
SSRF policy first, because a name that resolved to a public address at
registration may resolve elsewhere now.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable

import httpx

from registry.backends import RegistryBackend
from registry.errors import NotFound, RegistryError
from registry.models import Instance, InstanceKey
from registry.probes import ProbeResult, probe
from registry.ssrf import Resolver, UrlPolicy, check_url

__all__ = ["ProbeFn", "ProbeScheduler"]

_FIRST_RETRY = 0.1

ProbeFn = Callable[[httpx.AsyncClient, Instance], Awaitable[ProbeResult]]
ProbeObserver = Callable[[Instance, ProbeResult, float], None]


class ProbeScheduler:
    """Runs the active check of every instance of a backend."""

    def __init__(
        self,
        backend: RegistryBackend,
        http: httpx.AsyncClient,
        policy: UrlPolicy,
        *,
        concurrency: int = 32,
        probe_fn: ProbeFn = probe,
        resolver: Resolver | None = None,
        observe: ProbeObserver | None = None,
    ) -> None:
        self._backend = backend
        self._http = http
        self._policy = policy
        self._probe = probe_fn
        self._resolver = resolver
        self._observe = observe
        self._limit = asyncio.Semaphore(concurrency)
        self._due: dict[InstanceKey, float] = {}
        self._heap: list[tuple[float, str, str]] = []
        self._running: set[InstanceKey] = set()
        #: Failed probes in a row of instances not passing now (new or failing).
        self._starting: dict[InstanceKey, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def schedule(self, key: InstanceKey, delay: float = 0.0) -> None:
        """Probe a new or re-registered instance after ``delay`` seconds.

        Until its first probe passes, a failed probe is retried soon rather
        than an interval later (see :meth:`_next_delay`).
        """
        self._starting.setdefault(key, 0)
        self._plan(key, delay)

    def _plan(self, key: InstanceKey, delay: float) -> None:
        due = time.monotonic() + delay
        self._due[key] = due
        heapq.heappush(self._heap, (due, *key))
        self._wake.set()

    async def start(self) -> None:
        for instance in (await self._backend.all_instances()).value:
            self.schedule(instance.key)
        self._loop_task = asyncio.create_task(self._run(), name="registry-probes")

    async def close(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                due, service, name = heapq.heappop(self._heap)
                key = (service, name)
                if self._due.get(key) != due:
                    continue  # superseded by a later schedule()
                del self._due[key]
                if key in self._running:
                    continue  # still probing; it reschedules itself when done
                self._running.add(key)
                task = asyncio.create_task(self._check(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self._wake.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _check(self, key: InstanceKey) -> None:
        try:
            try:
                instance = await self._backend.get(*key)
            except NotFound:
                self._starting.pop(key, None)
                return
            interval = instance.check.interval_seconds
            if interval <= 0:
                return
            async with self._limit:
                started = time.monotonic()
                result = await self._probe_safely(instance)
                elapsed = time.monotonic() - started
            if self._observe is not None:
                self._observe(instance, result, elapsed)
            with contextlib.suppress(RegistryError):
                await self._backend.record_probe(*key, ok=result.ok, output=result.output)
            if key not in self._due:
                self._plan(key, self._next_delay(key, result.ok, interval))
        finally:
            self._running.discard(key)

    def _next_delay(self, key: InstanceKey, ok: bool, interval: float) -> float:
        # A process usually registers before its listener accepts: until its
        # first probe passes, retry soon (0.1 s doubling) rather than a whole
        # interval later, so new instances become routable in well under one.
        # The same once a passing instance fails (Envoy's unhealthy edge): the
        # failures that turn it critical come 0.1 s, 0.2 s, ... apart, so a
        # killed process leaves routing about one interval after it died.
        if ok:
            self._starting.pop(key, None)
            return interval
        attempts = self._starting.setdefault(key, 0)
        self._starting[key] = attempts + 1
        return min(interval, _FIRST_RETRY * (1 << min(attempts, 16)))

    async def _probe_safely(self, instance: Instance) -> ProbeResult:
        try:
            await check_url(instance.url, self._policy, resolver=self._resolver)
        except RegistryError as exc:
            reason = exc.errors[0].message if exc.errors else exc.detail
            return ProbeResult(ok=False, output=f"refused by the URL policy: {reason}")
        return await self._probe(self._http, instance)
