"""Run async servers on their own event loop in a thread, for synchronous test drivers.

schemathesis calls an API through ``requests`` (blocking): the servers under
test must answer from another thread. The servers are the real apps under
uvicorn on loopback ports (:func:`tests.support.live.serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")


@contextlib.contextmanager
def in_thread(
    factory: Callable[[], AbstractAsyncContextManager[T]], *, timeout: float = 30.0
) -> Iterator[T]:
    """Enter ``factory()`` on a new event loop in a thread; yield its value; exit it after."""
    handoff: queue.Queue[tuple[T | None, BaseException | None]] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        try:
            async with factory() as value:
                handoff.put((value, None))
                await stop.wait()
        except BaseException as exc:
            handoff.put((None, exc))
            raise

    def main() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(BaseException):
            loop.run_until_complete(run())
        # Tasks a library left behind (SSE shutdown watchers) end with the loop.
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=main, name="fuzz-servers", daemon=True)
    thread.start()
    value, error = handoff.get(timeout=timeout)
    if error is not None:
        thread.join(timeout)
        raise error
    try:
        yield value  # type: ignore[misc]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        assert not thread.is_alive(), "the servers did not stop"
