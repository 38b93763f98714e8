"""Run the mesh's processes: start them in order, restart crashes, stop them in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from meshgate.launcher.child import Child, describe_exit
from meshgate.launcher.output import Output
from meshgate.launcher.plan import ProcessSpec

__all__ = ["STOP_BUDGET", "StartupError", "Supervisor", "SupervisorPolicy"]

#: Seconds from a stop request to the last SIGKILL: everything is gone within 10 s.
STOP_BUDGET = 9.0
#: Ctrl-C, a service manager's stop, and the terminal closing.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class SupervisorPolicy:
    """Restart and readiness timings."""

    #: First restart delay; doubled after each crash in a row, up to ``backoff_max``.
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    #: Crashes in a row after which a process is given up on.
    max_restarts: int = 5
    #: Seconds of life after which a process's crash count starts again from zero.
    stable_after: float = 30.0
    poll_interval: float = 0.1
    #: Log lines kept per process, shown when it fails.
    tail_lines: int = 20


class StartupError(Exception):
    """A process that never became ready; carries its last log lines."""

    def __init__(self, name: str, reason: str, tail: Sequence[str]) -> None:
        self.name = name
        self.reason = reason
        self.tail = tuple(tail)
        super().__init__(f"{name} {reason}")


class Supervisor:
    """Starts ``processes`` stage by stage and keeps them running until told to stop."""

    def __init__(
        self,
        processes: Sequence[ProcessSpec],
        output: Output,
        policy: SupervisorPolicy | None = None,
    ) -> None:
        self.output = output
        self.policy = policy or SupervisorPolicy()
        self.children = [Child(p, deque(maxlen=self.policy.tail_lines)) for p in processes]
        self._stages = sorted({p.stage for p in processes})
        self._start_stages = sorted({p.start_stage for p in processes})
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None

    def request_stop(self) -> None:
        """Stop gracefully; asked twice, kill what still runs."""
        if self._stop.is_set():
            self.output.event("killing", "asked again: killing every process now")
            for child in self.children:
                child.signal(signal.SIGKILL)
        self._stop.set()

    async def run(self, on_ready: Callable[[float], None]) -> int:
        """Start everything, call ``on_ready(seconds)``, run until told to stop.

        Returns 0, or 1 when a process never became ready.
        """
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, self.request_stop)
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=1.0, trust_env=False) as self._http:
                try:
                    if not await self._start_all():
                        return 0
                except StartupError as exc:
                    self._collect_failures()
                    lines = "\n".join(f"    {line}" for line in exc.tail) or "    (no output)"
                    self.output.event(
                        "failed",
                        f"{exc.name} {exc.reason}; its last log lines:\n{lines}",
                        name=exc.name,
                        reason=exc.reason,
                        tail=list(exc.tail),
                    )
                    return 1
                on_ready(time.monotonic() - started)
                await self._stop.wait()
                return 0
        finally:
            await self._shutdown()
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)

    def _collect_failures(self) -> None:
        """Mark every failed start seen (asyncio warns of futures whose error nobody read)."""
        for child in self.children:
            if child.ready is not None and child.ready.done() and not child.ready.cancelled():
                child.ready.exception()

    async def _start_all(self) -> bool:
        """Start stage after stage; ``False`` if told to stop meanwhile."""
        stop = asyncio.create_task(self._stop.wait())
        try:
            for stage in self._start_stages:
                group = [c for c in self.children if c.spec.start_stage == stage]
                for child in group:
                    child.ready = asyncio.get_running_loop().create_future()
                    self._tasks.append(asyncio.create_task(self._supervise(child)))
                ready = asyncio.gather(*(c.ready for c in group if c.ready is not None))
                waits: set[asyncio.Future[Any]] = {ready, stop}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if stop.done():
                    ready.cancel()
                    self.output.event("interrupted", "stopped before the mesh was up")
                    return False
                ready.result()
            return True
        finally:
            stop.cancel()

    async def _supervise(self, child: Child) -> None:
        try:
            await self._keep_running(child)
        except Exception as exc:  # a launcher bug must not leave the start waiting forever
            reason = f"could not be supervised ({type(exc).__name__}: {exc})"
            if child.ready is not None and not child.ready.done():
                child.ready.set_exception(StartupError(child.spec.name, reason, child.tail))
            else:
                self.output.event("error", f"{child.spec.name} {reason}", name=child.spec.name)
            await child.kill()

    async def _keep_running(self, child: Child) -> None:
        spec, policy = child.spec, self.policy
        while True:
            began = time.monotonic()
            try:
                await child.spawn(self.output)
            except OSError as exc:  # no such executable, too many processes, ...
                reason: str | None = f"could not be started: {exc}"
            else:
                reason = await self._wait_ready(child)
            if reason is None:
                since = time.monotonic()
                first = child.ready is not None and not child.ready.done()
                self.output.event(
                    "ready",
                    f"{spec.name} {'ready' if first else 'ready again'} at {spec.url} "
                    f"(pid {child.pid}, {since - began:.1f} s)",
                    name=spec.name,
                    pid=child.pid,
                    url=spec.url,
                    seconds=round(since - began, 3),
                    restarts=child.restarts,
                )
                if first and child.ready is not None:
                    child.ready.set_result(None)
                assert child.proc is not None
                reason = describe_exit(await child.proc.wait())
                if time.monotonic() - since >= policy.stable_after:
                    child.crashes = 0
            else:
                await child.kill()
                if child.ready is not None and not child.ready.done():
                    child.ready.set_exception(StartupError(spec.name, reason, child.tail))
                    return
            child.crashes += 1
            if child.crashes > policy.max_restarts:
                child.given_up = True
                lines = "\n".join(f"    {line}" for line in child.tail)
                self.output.event(
                    "gave_up",
                    f"{spec.name} {reason}; it crashed {child.crashes} times in a row, so it "
                    f"stays down (the rest of the mesh runs on). Its last log lines:\n{lines}",
                    name=spec.name,
                    reason=reason,
                )
                return
            delay = min(policy.backoff_initial * 2 ** (child.crashes - 1), policy.backoff_max)
            self.output.event(
                "restarting",
                f"{spec.name} {reason}; restarting in {delay:g} s "
                f"(crash {child.crashes} of {policy.max_restarts} allowed in a row)",
                name=spec.name,
                reason=reason,
                delay=delay,
            )
            await asyncio.sleep(delay)
            child.restarts += 1

    async def _wait_ready(self, child: Child) -> str | None:
        """``None`` once ``/readyz`` answers 200, else why it never did."""
        assert child.proc is not None
        assert self._http is not None
        deadline = time.monotonic() + child.spec.ready_timeout
        url = child.spec.url + "/readyz"
        while True:
            if child.proc.returncode is not None:
                await child.drain()
                return f"{describe_exit(child.proc.returncode)} before it was ready"
            with contextlib.suppress(httpx.HTTPError):
                if (await self._http.get(url)).status_code == 200:
                    return None
            if time.monotonic() > deadline:
                return f"was not ready within {child.spec.ready_timeout:g} s ({url})"
            await asyncio.sleep(self.policy.poll_interval)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        began = time.monotonic()
        deadline = began + STOP_BUDGET
        if stopping := any(c.running for c in self.children):
            self.output.event("stopping", "stopping: agents, tool servers, gateway, registry")
        for stage in reversed(self._stages):
            group = [c for c in self.children if c.spec.stage == stage and c.running]
            if not group:
                continue
            for child in group:
                child.signal(signal.SIGTERM)
            waits = [asyncio.create_task(c.proc.wait()) for c in group if c.proc is not None]
            # The whole stop stays within STOP_BUDGET, however the stages share it.
            grace = min(
                max(c.spec.stop_grace for c in group), max(0.1, deadline - time.monotonic())
            )
            await asyncio.wait(waits, timeout=grace)
            for child in group:
                if child.running:
                    self.output.event(
                        "killed",
                        f"{child.spec.name} did not stop within {grace:g} s: SIGKILL",
                        name=child.spec.name,
                    )
                    await child.kill()
            for child in group:
                await child.drain()
                assert child.proc is not None
                assert child.proc.returncode is not None
                self.output.event(
                    "stopped",
                    f"{child.spec.name} stopped ({describe_exit(child.proc.returncode)})",
                    name=child.spec.name,
                    pid=child.pid,
                    status=child.proc.returncode,
                )
        for child in self.children:
            await child.drain()
        if stopping:
            seconds = time.monotonic() - began
            self.output.event("down", f"all stopped in {seconds:.1f} s", seconds=round(seconds, 3))
