"""Registry benchmark: a real registry process under HTTP load.

Run ``.venv/bin/python bench/registry.py`` from the repository root. It starts
the registry app under uvicorn in a child process (127.0.0.1, ephemeral port,
``sqlite`` backend in a temporary directory), drives it from this process with
``httpx.AsyncClient`` and prints one markdown table, also written to
``bench/results/registry-<date>.md``. See ``bench/README.md`` for how to read it.

This is a measurement, not a test: it fails only when the registry answers
wrongly, never on a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import gc
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
# This file is bench/registry.py: with bench/ first on sys.path, "import registry"
# would import this script instead of the package. Put the repository root there.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

RESULTS_DIR = _HERE / "results"

#: The shape of the catalogue: SERVICES services, N / SERVICES replicas each.
SERVICES = 100
#: Every agent card lists 2-3 skills drawn from this pool (~5% of agents per skill).
SKILLS = (
    "summarize", "translate", "classify", "extract", "search", "rank", "plan", "review",
    "draft", "answer", "cite", "forecast", "reconcile", "audit", "label", "transcribe",
    "caption", "detect", "segment", "cluster", "dedupe", "enrich", "geocode", "schedule",
    "route", "price", "quote", "invoice", "refund", "triage", "escalate", "moderate",
    "redact", "anonymize", "validate", "normalize", "parse", "render", "chart", "explain",
    "compare", "recommend", "negotiate", "monitor", "alert", "diagnose", "repair", "deploy",
    "benchmark", "simulate",
)  # fmt: skip
#: Each service's description names one domain word; ``?q=`` searches for them.
DOMAINS = (
    "finance", "legal", "medical", "retail", "travel", "energy", "logistics", "insurance",
    "security", "education", "media", "gaming", "telecom", "farming", "weather", "shipping",
    "banking", "housing", "hiring", "support",
)  # fmt: skip
#: Active probes off (the URLs are fake); the TTL outlives the run.
CHECK = {"interval_seconds": 0, "ttl_seconds": 300}

LIST_TARGET_MS = 20.0  # list and search p99 at 10,000 instances
WATCH_TARGET_MS = 50.0  # watch wake-up p99
TARGET_N = 10_000
WATCH_SETTLE_SECONDS = 0.02  # time a watcher gets to park before the change is sent


# -- the server process ---------------------------------------------------------


def serve_registry(data_dir: str, conn: Connection, profile_path: str | None) -> None:
    """Child process: bind 127.0.0.1:0, send the port to the parent, serve until SIGTERM."""
    import uvicorn

    from registry.backends import SqliteBackend
    from registry.server import RegistrySettings, create_app
    from registry.ssrf import UrlPolicy

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    conn.send(int(sock.getsockname()[1]))
    conn.close()
    backend = SqliteBackend(Path(data_dir) / "registry.db")
    app = create_app(backend, RegistrySettings(url_policy=UrlPolicy.loopback()))
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: object) -> None:
        # uvicorn re-raises the SIGTERM it caught once it has shut down; with the
        # default handler that would kill this process before the profile is written.
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        server.run(sockets=[sock])
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        sock.close()


class RegistryProcess:
    """The registry in a child process; stopped by its PID, never by name."""

    def __init__(self, data_dir: str, profile_path: str | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=serve_registry,
            args=(data_dir, child, profile_path),
            name="bench-registry",
            daemon=True,
        )
        self._proc.start()
        child.close()
        try:
            if not parent.poll(30):
                raise RuntimeError("the registry process did not report its port within 30 s")
            self.port: int = parent.recv()
        except (EOFError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"the registry process failed to start: {exc!r}") from exc
        finally:
            parent.close()
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    async def wait_ready(self, within: float = 30.0) -> None:
        """Poll ``/readyz`` until it answers 200, with a deadline."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if not self._proc.is_alive():
                    raise RuntimeError(f"the registry exited with code {self._proc.exitcode}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the registry was not ready within {within:.0f} s")

    def stop(self) -> None:
        """SIGTERM (graceful: lifespan shutdown, profile dump), then SIGKILL after 10 s."""
        if self._proc.pid is None or not self._proc.is_alive():
            return
        os.kill(self._proc.pid, signal.SIGTERM)
        self._proc.join(10)
        if self._proc.is_alive():
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.join(5)


# -- the catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """N agent instances: SERVICES services, N / SERVICES replicas each."""

    n: int
    services: list[str]
    skills: dict[str, tuple[str, ...]]  # service -> its card's skills
    domains: dict[str, str]  # service -> the domain word in its description
    keys: list[tuple[str, str]]  # (service, instance), interleaved across services

    @classmethod
    def build(cls, n: int, seed: int = 7) -> Catalogue:
        rng = random.Random(seed)
        services = [f"agent-{i:03d}" for i in range(SERVICES)]
        skills = {s: tuple(rng.sample(SKILLS, rng.choice((2, 3)))) for s in services}
        domains = {s: DOMAINS[i % len(DOMAINS)] for i, s in enumerate(services)}
        keys = [(services[i % SERVICES], f"r{i // SERVICES:05d}") for i in range(n)]
        return cls(n, services, skills, domains, keys)

    def url(self, i: int) -> str:
        service, instance = self.keys[i]
        return f"http://127.0.0.1:{20_000 + i % 40_000}/a2a/{service}/{instance}/"

    def body(self, i: int) -> bytes:
        """The registration of instance ``i`` as JSON bytes (encoded before timing)."""
        service, _ = self.keys[i]
        url = self.url(i)
        card = agent_card(service, url, self.skills[service], self.domains[service])
        registration = {"kind": "a2a-agent", "url": url, "card": card, "tags": ["bench"]}
        registration["check"] = CHECK
        return json.dumps(registration).encode()


def agent_card(name: str, url: str, skills: tuple[str, ...], domain: str) -> dict[str, Any]:
    """A valid A2A 1.0 Agent Card (the shape of ``tests/support/peers.py::agent_card``)."""
    return {
        "name": name,
        "description": f"{name}: a {domain} agent that handles {', '.join(skills)} requests",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {"id": s, "name": s.title(), "description": f"The {s} skill.", "tags": [s]}
            for s in skills
        ],
    }


# -- measurement --------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    op: str
    n: int
    latencies: list[float]  # seconds
    elapsed: float  # wall time of the whole run of this op
    target_ms: float | None = None
    server_mean_ms: float | None = None  # handler time from the registry's /metrics
    body_bytes: int | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1e3

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1e3

    @property
    def ok(self) -> bool | None:
        return None if self.target_ms is None else self.p99_ms <= self.target_ms


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    floors: dict[int, Row] = field(default_factory=dict)  # N -> healthz row


Call = Callable[[int], Awaitable[None]]


async def drive(
    call: Call, count: int, concurrency: int, budget: float
) -> tuple[list[float], float]:
    """Run ``call(0..count-1)`` on ``concurrency`` workers; stop issuing after ``budget`` s."""
    settle_client_heap()
    latencies: list[float] = []
    next_i = 0
    start = time.perf_counter()
    deadline = start + budget

    async def worker() -> None:
        nonlocal next_i
        while next_i < count and time.perf_counter() < deadline:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return latencies, time.perf_counter() - start


def settle_client_heap() -> None:
    """Collect and freeze the bench's own heap so its GC pauses stay out of the figures."""
    gc.collect()
    gc.freeze()


def expect(response: httpx.Response, *codes: int) -> httpx.Response:
    if response.status_code not in codes:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def handler_seconds(client: httpx.AsyncClient) -> dict[str, tuple[float, float]]:
    """``route -> (sum seconds, count)`` of GET requests, from the registry's /metrics."""
    text = expect(await client.get("/metrics"), 200).text
    out: dict[str, tuple[float, float]] = {}
    for line in text.splitlines():
        if not line.startswith("meshgate_registry_request_seconds_") or 'method="GET"' not in line:
            continue
        name, _, value = line.rpartition(" ")
        route = name.split('route="', 1)[1].split('"', 1)[0]
        total, count = out.get(route, (0.0, 0.0))
        if name.startswith("meshgate_registry_request_seconds_sum"):
            out[route] = (float(value), count)
        elif name.startswith("meshgate_registry_request_seconds_count"):
            out[route] = (total, float(value))
    return out


class Bench:
    def __init__(self, client: httpx.AsyncClient, cat: Catalogue, concurrency: int) -> None:
        self.client = client
        self.cat = cat
        self.concurrency = concurrency

    # writes

    async def register(self) -> Row:
        bodies = [self.cat.body(i) for i in range(self.cat.n)]
        headers = {"content-type": "application/json"}

        async def call(i: int) -> None:
            service, instance = self.cat.keys[i]
            path = f"/v1/services/{service}/instances/{instance}"
            expect(await self.client.put(path, content=bodies[i], headers=headers), 201)

        latencies, elapsed = await drive(call, self.cat.n, self.concurrency, budget=90)
        if len(latencies) < self.cat.n:
            raise RuntimeError(f"registered only {len(latencies)} of {self.cat.n} within 90 s")
        return Row("register", self.cat.n, latencies, elapsed)

    async def heartbeat(self, op: str) -> Row:
        body = json.dumps({"status": "passing"}).encode()
        headers = {"content-type": "application/json"}

        async def call(i: int) -> None:
            service, instance = self.cat.keys[i]
            path = f"/v1/services/{service}/instances/{instance}/heartbeat"
            expect(await self.client.put(path, content=body, headers=headers), 200)

        latencies, elapsed = await drive(call, self.cat.n, self.concurrency, budget=45)
        return Row(op, self.cat.n, latencies, elapsed)

    # reads: one request in flight, so the figures are latency, not queueing

    async def read(
        self,
        op: str,
        paths: list[str],
        count: int,
        *,
        route: str,
        expect_items: Callable[[str], int] | None = None,
        target_ms: float | None = None,
        budget: float = 20.0,
    ) -> Row:
        sizes: list[int] = []
        for path in paths[:3]:  # warm up and check the answers once, outside the timing
            response = expect(await self.client.get(path), 200)
            sizes.append(len(response.content))
            if expect_items is not None:
                got, want = len(response.json()), expect_items(path)
                if got != want:
                    raise RuntimeError(f"GET {path} listed {got} items, expected {want}")
        before = await handler_seconds(self.client)

        async def call(i: int) -> None:
            expect(await self.client.get(paths[i % len(paths)]), 200)

        latencies, elapsed = await drive(call, count, 1, budget)
        after = await handler_seconds(self.client)
        (s0, c0), (s1, c1) = before.get(route, (0.0, 0.0)), after.get(route, (0.0, 0.0))
        server_ms = (s1 - s0) / (c1 - c0) * 1e3 if c1 > c0 else None
        n = self.cat.n
        target = target_ms if n >= TARGET_N else None
        return Row(op, n, latencies, elapsed, target, server_ms, max(sizes))

    async def read_native(self, op: str, path: str, count: int) -> Row | None:
        """The same read with curl as the client: server and transport without
        Python's cost of reading a large body, as a reference for the httpx rows."""
        curl = shutil.which("curl")
        if curl is None:
            return None
        url = str(self.client.base_url).rstrip("/") + path
        started = time.perf_counter()
        # -o applies to one URL each; one process reuses its connection.
        per_url = [arg for _ in range(count) for arg in ("-o", "/dev/null", url)]
        proc = await asyncio.create_subprocess_exec(
            curl,
            "-s",
            "-w",
            "%{time_total}\\n",
            *per_url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        elapsed = time.perf_counter() - started
        latencies = [float(line) for line in out.decode().split()]
        target = LIST_TARGET_MS if self.cat.n >= TARGET_N else None
        return Row(op, self.cat.n, latencies, elapsed, target)

    async def watch(self, rounds: int, budget: float = 40.0) -> Row:
        """Blocking list held open, then a heartbeat that changes the service's health."""
        settle_client_heap()
        latencies: list[float] = []
        start = time.perf_counter()
        for k in range(rounds):
            if time.perf_counter() - start > budget:
                break
            service = self.cat.services[k % len(self.cat.services)]
            instance = self.cat.keys[k % len(self.cat.services)][1]
            listing = f"/v1/services/{service}/instances"
            index = int(expect(await self.client.get(listing), 200).headers["X-Meshgate-Index"])

            async def watcher(path: str = listing, seen: int = index) -> tuple[int, float]:
                params = {"index": str(seen), "wait": "30s"}
                response = expect(await self.client.get(path, params=params), 200)
                return int(response.headers["X-Meshgate-Index"]), time.perf_counter()

            task = asyncio.create_task(watcher())
            await asyncio.sleep(WATCH_SETTLE_SECONDS)
            if task.done():
                raise RuntimeError(f"a watch on {service} returned before any change")
            status = "warning" if (k // len(self.cat.services)) % 2 == 0 else "passing"
            body = json.dumps({"status": status}).encode()
            t0 = time.perf_counter()
            change = await self.client.put(
                f"{listing}/{instance}/heartbeat",
                content=body,
                headers={"content-type": "application/json"},
            )
            expect(change, 200)
            new_index, arrived = await asyncio.wait_for(task, 35)
            if new_index != change.json()["modify_index"]:
                raise RuntimeError(f"the watcher saw index {new_index}, the change made another")
            latencies.append(arrived - t0)
        return Row(
            "watch wake-up", self.cat.n, latencies, time.perf_counter() - start, WATCH_TARGET_MS
        )


async def bench_size(n: int, args: argparse.Namespace, report: Report) -> None:
    cat = Catalogue.build(n)
    with tempfile.TemporaryDirectory(prefix="meshgate-bench-") as data_dir:
        profile = f"{args.profile_server}.{n}" if args.profile_server else None
        proc = RegistryProcess(data_dir, profile)
        try:
            await proc.wait_ready()
            print(f"  N={n}: registry pid {proc.pid} at {proc.url}", file=sys.stderr)
            limits = httpx.Limits(
                max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4
            )
            async with httpx.AsyncClient(
                base_url=proc.url, limits=limits, timeout=60.0, trust_env=False
            ) as client:
                await run_ops(Bench(client, cat, args.concurrency), args, report)
        finally:
            proc.stop()


async def run_ops(b: Bench, args: argparse.Namespace, report: Report) -> None:
    cat, rows = b.cat, report.rows
    step = _Progress(cat.n)
    rows.append(await step(b.register()))
    rows.append(await step(b.heartbeat("heartbeat (first: critical->passing)")))
    rows.append(await step(b.heartbeat("heartbeat (steady, no change)")))
    floor = await step(b.read("healthz (floor)", ["/healthz"], 500, route="/healthz"))
    report.floors[cat.n] = floor
    rows.append(floor)
    per_service = cat.n // SERVICES
    rows.append(
        await step(
            b.read(
                f"list one service ({per_service} instances)",
                [f"/v1/services/{s}/instances" for s in cat.services],
                500,
                route="/v1/services/{service}/instances",
                expect_items=lambda _: per_service,
                target_ms=LIST_TARGET_MS,
            )
        )
    )
    rows.append(
        await step(
            b.read(
                f"list all agents ({cat.n})",
                ["/v1/agents"],
                200 if cat.n < TARGET_N else 100,
                route="/v1/agents",
                expect_items=lambda _: cat.n,
                target_ms=LIST_TARGET_MS,
                budget=30.0,
            )
        )
    )
    native = await b.read_native(f"list all agents ({cat.n}), curl client", "/v1/agents", 100)
    if native is not None:
        rows.append(native)
    by_skill = {s: sum(s in cat.skills[svc] for svc in cat.services) * per_service for s in SKILLS}
    rows.append(
        await step(
            b.read(
                "search ?skill=X",
                [f"/v1/agents?skill={s}" for s in SKILLS],
                300,
                route="/v1/agents",
                expect_items=lambda p: by_skill[p.rsplit("=", 1)[1]],
                target_ms=LIST_TARGET_MS,
            )
        )
    )
    by_word = {d: sum(cat.domains[s] == d for s in cat.services) * per_service for d in DOMAINS}
    rows.append(
        await step(
            b.read(
                "search ?q=word",
                [f"/v1/agents?q={d}" for d in DOMAINS],
                300,
                route="/v1/agents",
                expect_items=lambda p: by_word[p.rsplit("=", 1)[1]],
                target_ms=LIST_TARGET_MS,
            )
        )
    )
    rows.append(await step(b.watch(args.watch_rounds)))


class _Progress:
    """Prints each op's duration to stderr as it finishes."""

    def __init__(self, n: int) -> None:
        self.n = n

    async def __call__(self, work: Awaitable[Row]) -> Row:
        row = await work
        print(
            f"    {row.op:<40} {row.count:>6} in {row.elapsed:6.1f} s  "
            f"p50 {row.p50_ms:7.2f} ms  p99 {row.p99_ms:7.2f} ms",
            file=sys.stderr,
        )
        return row


# -- output ---------------------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}"
        for p in ("uvicorn", "uvloop", "httptools", "starlette", "pydantic", "httpx")
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- machine: nproc {len(os.sched_getaffinity(0))} ({model}), "
        f"{platform.system()} {platform.release()}, load average {load} at the end",
        f"- python {platform.python_version()} ({platform.python_implementation()}); {versions}",
    ]


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(report: Report, args: argparse.Namespace) -> str:
    lines = [
        f"# Registry benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        *machine(),
        "- server: registry app under uvicorn (uvloop, httptools, access log off) in a child "
        "process on 127.0.0.1, sqlite backend (WAL, synchronous=NORMAL) in a temp dir, "
        "URL policy loopback, active probes off",
        f"- catalogue: {SERVICES} services x N/{SERVICES} replicas, all a2a-agent; each card "
        f"2-3 skills from a pool of {len(SKILLS)}, one of {len(DOMAINS)} domain words in its "
        "description",
        f"- client: httpx.AsyncClient in the bench process; writes {args.concurrency} in "
        "flight, reads and watches 1 in flight",
        "",
        "| op | N | count | req/s | p50 ms | p99 ms | target | ok |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in report.rows:
        target = "—" if r.target_ms is None else f"p99 <= {r.target_ms:g} ms"
        ok = {None: "—", True: "yes", False: "**no**"}[r.ok]
        lines.append(
            f"| {r.op} | {r.n} | {r.count} | {r.rate:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {target} | {ok} |"
        )
    lines += [
        "",
        "Reads against the floor (`GET /healthz` of the same server, same client, same run); "
        "server ms is the mean handler time from the registry's own `/metrics`, the rest of "
        "the latency is transport and the client reading the body.",
        "",
        "| op | N | body KiB | p99 ms | floor p99 ms | p99 / floor | server mean ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report.rows:
        floor = report.floors.get(r.n)
        if r.body_bytes is None or floor is None or r is floor:
            continue
        lines.append(
            f"| {r.op} | {r.n} | {r.body_bytes / 1024:.1f} | {r.p99_ms:.2f} | "
            f"{floor.p99_ms:.2f} | {r.p99_ms / floor.p99_ms:.1f}x | {fmt(r.server_mean_ms)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,10000", help="instance counts (default 1000,10000)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="writes in flight (16)")
    parser.add_argument("--watch-rounds", type=int, default=200, help="watch repeats (200)")
    parser.add_argument(
        "--profile-server",
        metavar="PATH",
        help="run the server under cProfile; writes PATH.<N> (pstats) when it stops",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no result file")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(n < SERVICES or n % SERVICES for n in sizes):
        parser.error(f"each size must be a positive multiple of {SERVICES}")

    report = Report()
    started = time.monotonic()
    for n in sizes:
        asyncio.run(bench_size(n, args, report))
    print(f"  total {time.monotonic() - started:.0f} s", file=sys.stderr)
    text = render(report, args)
    print(text)
    if not args.no_write:
        RESULTS_DIR.mkdir(exist_ok=True)
        out = RESULTS_DIR / f"registry-{datetime.date.today():%Y-%m-%d}.md"
        out.write_text(text, encoding="utf-8")
        print(f"written to {out.relative_to(_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
