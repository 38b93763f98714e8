"""One supervised process: started in its own group, its output pumped, stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from dataclasses import dataclass, field

from meshgate.launcher.output import Output
from meshgate.launcher.plan import ProcessSpec
from meshgate.lifeline import PARENT_ENV

__all__ = ["Child", "describe_exit"]

#: Longest log line read whole from a child (longer ones are cut).
_LINE_LIMIT = 1 << 20


def describe_exit(code: int) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


@dataclass
class Child:
    """One process slot of the mesh and what happened to it (restarts reuse the slot)."""

    spec: ProcessSpec
    tail: deque[str] = field(default_factory=deque)
    proc: asyncio.subprocess.Process | None = None
    crashes: int = 0
    restarts: int = 0
    given_up: bool = False
    pump: asyncio.Task[None] | None = None
    #: Resolved when it first answers ``/readyz``; failed if it never does.
    ready: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def spawn(self, output: Output) -> asyncio.subprocess.Process:
        """Start the process; its output goes to ``output`` line by line."""
        spec = self.spec
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # PARENT_ENV: it stops when this launcher is gone, even SIGKILLed.
            env={
                **os.environ,
                **spec.env,
                "PYTHONUNBUFFERED": "1",
                PARENT_ENV: str(os.getpid()),
            },
            # Its own process group: the terminal's Ctrl-C reaches the launcher only,
            # which then stops the mesh in order.
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        self.proc = proc
        assert proc.stdout is not None
        self.pump = asyncio.create_task(self._pump(proc.stdout, output))
        output.event(
            "started",
            f"{spec.name} started (pid {proc.pid}, port {spec.port})",
            name=spec.name,
            pid=proc.pid,
            port=spec.port,
        )
        return proc

    async def _pump(self, stream: asyncio.StreamReader, output: Output) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the limit: take what there is
                raw = await stream.read(_LINE_LIMIT)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.tail.append(line)
            output.child(self.spec.name, line)

    def signal(self, signum: signal.Signals) -> None:
        """Signal the process by its PID (SIGKILL: its whole group), if it still runs."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                if signum == signal.SIGKILL:
                    # The group is the child's own (start_new_session): what it started goes too.
                    os.killpg(self.proc.pid, signum)
                else:
                    os.kill(self.proc.pid, signum)

    async def kill(self) -> None:
        """SIGKILL, then wait for the exit and the last output."""
        if self.proc is not None and self.proc.returncode is None:
            self.signal(signal.SIGKILL)
            await self.proc.wait()
        await self.drain()

    async def drain(self) -> None:
        """Let the output of an exited process reach the screen and its tail."""
        if self.pump is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.pump), 1.0)
