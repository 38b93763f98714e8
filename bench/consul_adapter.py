"""Async adapter or threads for py-consul: what held blocking queries cost the event loop.

N watchers hold a Consul blocking query each (against the Consul double, served
from its own thread so its work does not count). Measured on the caller's loop:

* max lag of a 5 ms timer while the queries are held;
* how long ``loop.getaddrinfo`` takes meanwhile (it runs on the default thread
  pool, as every ``asyncio.to_thread`` does);
* how long after a change every watcher has its answer.

``async``: the backend's adapter (py-consul over httpx.AsyncClient).
``threads``: py-consul's own synchronous client (requests) in ``asyncio.to_thread``.

    .venv/bin/python bench/consul_adapter.py [--watchers 20] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import consul.std
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry.backends.consul import ConsulSettings
from registry.backends.consul.http import AsyncConsul
from tests.support.consul_double import running_in_thread

HOLD = 5.0  # seconds each blocking query may be held


async def measure(
    name: str, watchers: int, block: Callable[[int], Awaitable[Any]], change: Callable[[], Any]
) -> dict[str, Any]:
    index_box: list[int] = []
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - started - 0.005)

    answered: list[float] = []

    async def watch() -> None:
        await block(index_box[0])
        answered.append(time.perf_counter())

    index_box.append(int(await change()))
    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await asyncio.sleep(1.0)  # let every watcher send its query (a bench, not a test)
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(1.0)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    await loop.getaddrinfo("localhost", 80)
    resolve = time.perf_counter() - started
    changed = time.perf_counter()
    await change()
    await asyncio.gather(*tasks)
    stop.set()
    await tick
    return {
        "adapter": name,
        "watchers": watchers,
        "max lag (ms)": max(lags) * 1000,
        "median lag (ms)": statistics.median(lags) * 1000,
        "getaddrinfo while held (ms)": resolve * 1000,
        "all woken after change (ms)": (max(answered) - changed) * 1000,
    }


async def main(watchers: int) -> list[dict[str, Any]]:
    rows = []
    with running_in_thread() as (_, url):
        settings = ConsulSettings(addr=url, request_timeout=HOLD + 5)
        async with httpx.AsyncClient(
            trust_env=False, limits=httpx.Limits(max_connections=None)
        ) as http:
            client = AsyncConsul(settings, http)

            async def change() -> int:
                await client.kv.put("bench/key", str(time.time()))
                index, _ = await client.kv.get("bench/key")
                return int(index)

            async def block_async(index: int) -> Any:
                return await client.kv.get("bench/key", index=index, wait=f"{int(HOLD)}s")

            rows.append(await measure("async", watchers, block_async, change))
            host, port = url.removeprefix("http://").split(":")
            sync = consul.std.Consul(host=host, port=int(port), scheme="http")

            async def block_thread(index: int) -> Any:
                return await asyncio.to_thread(
                    sync.kv.get, "bench/key", index=index, wait=f"{int(HOLD)}s"
                )

            rows.append(await measure("threads", watchers, block_thread, change))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result = table(asyncio.run(main(args.watchers)))
    print(result)
    if not args.no_write:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        out = Path(__file__).parent / "results" / f"consul-adapter-{stamp}.md"
        out.write_text(f"# bench/consul_adapter.py, {args.watchers} watchers\n\n{result}\n")
        print(f"written to {out}")
