"""Gateway hot-path benchmark: direct vs gateway vs nginx, paired in one run.

Starts, on 127.0.0.1, an upstream, the gateway under test in front of it and
nginx (the reference proxy, upstream keepalive on), then drives each with wrk
(POST of a small JSON-RPC body) at c=1, 16 and 64, in turn, on the same cores.
Reports requests/s, p50, p99 and the proxy's CPU per request (``/proc/PID/stat``)
and the ratios gateway/direct and gateway/nginx; an SSE row (CPU per event of
the proxy); and the "one core" variant: upstream and proxy pinned to CPU 0
(``taskset``), wrk on CPU 1, c=64.

Upstreams: a trivial raw-ASGI app under uvicorn (uvloop + httptools), and the
reference summarizer agent (A2A ``SendMessage``), unless ``--no-agent``.

The gateway is ``meshgate gateway`` routing ``/a2a/{service}/`` from a registry
the bench starts; ``--proxy-core`` measures instead the bare proxy core (a
raw-ASGI proxy over ``gateway.proxy.UpstreamClient`` alone), which shows what
the upstream client costs without routing, auth and metrics. ``--gateway-cmd``
swaps in any other process; see bench/README.md.
Run: ``.venv/bin/python bench/gateway.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's directory comes first on sys.path, and this file
# is called gateway.py: without this, ``import gateway`` would import itself.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROXY_CORE_CMD = "{python} bench/gateway.py proxy-core --port {port} --upstream {upstream_url}"
#: The product: `meshgate gateway` routing from a registry the bench starts.
GATEWAY_CMD = "{python} -m meshgate --log-level warning gateway --port {port} --registry {registry}"
RPC_BODY = b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}'
RPC_ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{"ok":true}}'
SSE_EVENT = b'data: {"jsonrpc":"2.0","id":1,"result":{"kind":"status-update","final":false}}\n\n'
TEXT = (
    "The with statement wraps the execution of a block with methods defined by a "
    "context manager. It allows common try, except and finally usage patterns to be "
    "encapsulated for convenient reuse."
)

# Issue 4's targets for the gateway, checked on the trivial upstream.
TARGET_ADDED_P50_MS = 0.35  # at c=1
TARGET_CPU_US = 250.0  # per proxied request
TARGET_VS_DIRECT = 0.25  # throughput at c=64, one core
TARGET_VS_NGINX = 0.33
TARGET_SSE_US = 15.0  # per event


# -- the processes under test -------------------------------------------------------


def upstream_main(port: int) -> None:
    """The trivial upstream: a JSON-RPC answer for any request; SSE at ``/sse``."""
    answer_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(RPC_ANSWER)).encode()),
    ]
    sse_headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["path"] != "/sse":
            await send({"type": "http.response.start", "status": 200, "headers": answer_headers})
            await send({"type": "http.response.body", "body": RPC_ANSWER})
            return
        # /sse?n=N&gap_ms=G: N events, G ms apart (the pace of a model's tokens,
        # so each event travels on its own rather than coalesced with the next).
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if p)
        count, gap = int(query.get("n", "100")), float(query.get("gap_ms", "1")) / 1e3
        await send({"type": "http.response.start", "status": 200, "headers": sse_headers})
        for _ in range(count):
            await send({"type": "http.response.body", "body": SSE_EVENT, "more_body": True})
            await asyncio.sleep(gap)
        await send({"type": "http.response.body", "body": b""})

    serve(app, port)


def proxy_core_main(port: int, upstream_url: str) -> None:
    """The proxy core: what every proxied request costs the gateway at least.

    Raw ASGI over ``UpstreamClient``: read the body, drop hop-by-hop headers and
    credentials, forward, stream the answer back (SSE unbuffered). No routing,
    auth or metrics: the real gateway adds those on top.
    """
    from gateway.proxy import UpstreamClient, UpstreamError

    host, _, port_text = upstream_url.removeprefix("http://").rstrip("/").partition(":")
    origin = (host, int(port_text or 80))
    drop = frozenset(
        (
            b"host",
            b"connection",
            b"keep-alive",
            b"transfer-encoding",
            b"te",
            b"upgrade",
            b"content-length",
            b"authorization",
            b"cookie",
            b"proxy-authorization",
        )
    )
    client = UpstreamClient()
    bad_gateway = [(b"content-type", b"text/plain"), (b"content-length", b"11")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        target = scope["raw_path"]
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        headers = [h for h in scope["headers"] if h[0] not in drop]
        try:
            response = await client.request(origin, scope["method"].encode(), target, headers, body)
        except UpstreamError:
            await send({"type": "http.response.start", "status": 502, "headers": bad_gateway})
            await send({"type": "http.response.body", "body": b"bad gateway"})
            return
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        more = True
        try:
            async for chunk in response.stream():
                # The last chunk closes the response: one ASGI message fewer.
                more = not response.complete
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        finally:
            await response.aclose()
        if more:
            await send({"type": "http.response.body", "body": b""})

    serve(app, port, lifespan="on", pass_headers=True)


def serve(
    app: Any, port: int, *, lifespan: Literal["on", "off"] = "off", pass_headers: bool = False
) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        # A proxy passes the upstream's Date and Server rather than adding its own.
        server_header=not pass_headers,
        date_header=not pass_headers,
    )


# -- processes, by PID -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += descendants(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


class Service:
    """A process this bench started; CPU is summed over it and its children."""

    def __init__(self, name: str, argv: list[str], port: int, ready: str) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait_ready(ready)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, path: str, within: float = 40.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()}")
            with contextlib.suppress(OSError):
                status, _ = http_call(self.port, "GET", path)
                if status < 500:  # answering HTTP (a proxy's GET / may be 405 upstream)
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready: {self.log()}")

    def pids(self) -> list[int]:
        return descendants(self.popen.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def pin(self, cpus: str) -> None:
        for pid in self.pids():
            subprocess.run(
                ["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, stdout=subprocess.DEVNULL
            )

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def http_call(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request on a fresh connection (readiness and sanity checks; not timed)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx-{port}.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    upstream up {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /nginx-ready {{ return 200 "ok"; }}
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location /sse {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


def start_nginx(tmp: Path, upstream_port: int) -> Service:
    port = free_port()
    conf = tmp / f"nginx-{port}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream_port))
    argv = ["nginx", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / f"nginx-{port}.log")]
    return Service("nginx", argv, port, "/nginx-ready")


# -- wrk ----------------------------------------------------------------------------------


@dataclass
class Run:
    target: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # of the measured process, per request
    errors: int


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(
    service: Service, path: str, lua: Path, concurrency: int, seconds: int, pin: str | None
) -> Run:
    argv = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(lua),
        service.url + path,
    ]
    if pin is not None:
        argv = ["taskset", "-c", pin, *argv]
    before = service.cpu()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    used = service.cpu() - before

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        return float(match[1]) * _UNIT[match[2]]

    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(
        service.name,
        concurrency,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        latency("50"),
        latency("99"),
        used / max(requests, 1) * 1e6,
        errors + (int(non2xx[1]) if non2xx else 0),
    )


# -- workloads ------------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    service: str  # the name the upstream is registered under (real gateway)
    lua: str
    check: Callable[[int, bytes], bool]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def trivial_workload() -> Workload:
    lua = f"""wrk.method = "POST"
wrk.body = '{RPC_BODY.decode()}'
wrk.headers["Content-Type"] = "application/json"
"""
    return Workload(
        "trivial",
        "bench-trivial",
        lua,
        lambda s, b: s == 200 and b == RPC_ANSWER,
        RPC_BODY,
        {"Content-Type": "application/json"},
    )


def send_message(message_id: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {
            "message": {
                "messageId": message_id,
                "role": "ROLE_USER",
                "parts": [{"text": TEXT}],
                "metadata": {"skill": "summarize"},
            }
        },
    }


def agent_workload() -> Workload:
    # A fresh messageId per request: the agent stores every task, and answers a
    # repeated messageId from memory. Each wrk process starts its Lua state with
    # the same unseeded random sequence, so the start time makes the prefix unique
    # per run (runs are seconds apart).
    template = json.dumps(send_message("MSGID")).replace("MSGID", "%s-%d")
    lua = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["A2A-Version"] = "1.0"
local prefix = "{uuid.uuid4().hex[:12]}-" .. tostring(os.time())
local n = 0
request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, string.format('{template}', prefix, n))
end
"""

    def check(status: int, body: bytes) -> bool:
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        state = answer.get("result", {}).get("task", {}).get("status", {}).get("state")
        return status == 200 and state == "TASK_STATE_COMPLETED"

    body = json.dumps(send_message(str(uuid.uuid4()))).encode()
    headers = {"Content-Type": "application/json", "A2A-Version": "1.0"}
    return Workload("summarizer agent", "summarizer", lua, check, body, headers)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Options:
    gateway_cmd: str
    gateway_label: str
    gateway_path: str
    seconds: int
    warmup: int
    rounds: int
    agent: bool
    write: bool
    sse_streams: int
    sse_events: int


@dataclass
class Stack:
    """The three targets of one workload, and how to reach each."""

    upstream: Service
    gateway: Service
    nginx: Service
    gateway_path: str

    def targets(self) -> Iterator[tuple[str, Service, str]]:
        yield "direct", self.upstream, "/"
        yield "gateway", self.gateway, self.gateway_path
        yield "nginx", self.nginx, "/"

    def stop(self) -> None:
        for service in (self.nginx, self.gateway, self.upstream):
            service.stop()


def start_stack(workload: Workload, opts: Options, tmp: Path, registry: str | None) -> Stack:
    started: list[Service] = []  # stopped again if anything below fails
    try:
        port = free_port()
        if workload.name == "trivial":
            argv = [sys.executable, str(Path(__file__)), "upstream", "--port", str(port)]
            upstream = Service("upstream", argv, port, "/")
            started.append(upstream)
            if registry is not None:
                register_trivial(registry, upstream.url)
        else:
            argv = [
                sys.executable,
                "-m",
                "meshgate",
                "--log-level",
                "warning",
                "agent",
                "summarizer",
                "--port",
                str(port),
                "--data",
                str(tmp / f"agent-{port}"),
            ]
            if registry is not None:
                argv += ["--registry", registry]
            upstream = Service("upstream", argv, port, "/readyz")
            started.append(upstream)
        gateway_port = free_port()
        command = opts.gateway_cmd.format(
            python=shlex.quote(sys.executable),
            port=gateway_port,
            upstream_url=upstream.url,
            upstream_host="127.0.0.1",
            upstream_port=port,
            registry=registry or "",
        )
        path = opts.gateway_path.format(service=workload.service)
        # GET /readyz: the gateway's own, or the upstream's through the proxy core.
        gateway = Service(opts.gateway_label, shlex.split(command), gateway_port, "/readyz")
        started.append(gateway)
        nginx = start_nginx(tmp, port)
        started.append(nginx)
        stack = Stack(upstream, gateway, nginx, path)
        for name, service, target in stack.targets():
            # A gateway may learn of the upstream from the registry a little later.
            deadline = time.monotonic() + 30
            while True:
                status, body = http_call(
                    service.port, "POST", target, workload.body, workload.headers
                )
                if workload.check(status, body):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} answered {status} {body[:300]!r}")
                time.sleep(0.2)
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    return stack


def register_trivial(registry: str, url: str) -> None:
    """Register the trivial upstream as an agent, for a real gateway to route to."""
    card = {
        "name": "bench-trivial",
        "description": "Answers every JSON-RPC call at once (bench upstream).",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": url + "/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "echo", "name": "echo", "description": "Echo.", "tags": ["bench"]}],
    }
    body = {
        "kind": "a2a-agent",
        "url": url,
        "card": card,
        "check": {"interval_seconds": 0, "ttl_seconds": 3600},
    }
    port = int(registry.rsplit(":", 1)[1])
    path = "/v1/services/bench-trivial/instances/bench-trivial-1"
    status, answer = http_call(
        port, "PUT", path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    if status < 300:  # a new instance is critical until its first heartbeat
        status, answer = http_call(port, "PUT", path + "/heartbeat")
    if status >= 300:
        raise RuntimeError(f"registering the trivial upstream failed: {status} {answer[:300]!r}")


def measure_matrix(
    stack: Stack,
    lua: Path,
    opts: Options,
    concurrencies: tuple[int, ...],
    pin: str | None,
    rounds: int,
    seconds: int,
) -> list[Run]:
    """Each cell ``rounds`` times, the targets interleaved and their order rotated
    (paired in time, none always first); the median of each figure is kept."""
    runs = []
    targets = list(stack.targets())
    for concurrency in concurrencies:
        cells: dict[str, list[Run]] = {name: [] for name, _, _ in targets}
        for round_ in range(rounds):
            shift = round_ % len(targets)
            for name, service, path in targets[shift:] + targets[:shift]:
                if round_ == 0:
                    wrk(service, path, lua, concurrency, opts.warmup, pin)
                cells[name].append(wrk(service, path, lua, concurrency, seconds, pin))
        for name, _, _ in targets:
            run = median_run(name, concurrency, cells[name])
            runs.append(run)
            print(
                f"  {name:8} c={concurrency:<3} {run.rps:9.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                f"p99 {run.p99_ms:7.2f} ms  {run.cpu_us:6.0f} us/req  "
                f"(req/s of the rounds: {' '.join(f'{r.rps:.0f}' for r in cells[name])})",
                flush=True,
            )
    return runs


def median_run(target: str, concurrency: int, rounds: list[Run]) -> Run:
    return Run(
        target,
        concurrency,
        statistics.median(r.rps for r in rounds),
        statistics.median(r.p50_ms for r in rounds),
        statistics.median(r.p99_ms for r in rounds),
        statistics.median(r.cpu_us for r in rounds),
        sum(r.errors for r in rounds),
    )


@dataclass
class SseRun:
    target: str
    events: int
    cpu_us: float
    chunks_per_event: float
    seconds: float


async def sse_streams(port: int, path: str, streams: int, events: int) -> tuple[int, int]:
    """Read ``streams`` SSE streams at once; (bytes, chunks) received."""
    import uvloop  # noqa: F401  (the caller runs this under uvloop)

    from gateway.proxy import ClientSettings, UpstreamClient

    client = UpstreamClient(ClientSettings(max_idle_per_origin=streams))
    target = f"{path.rstrip('/')}/sse?n={events}&gap_ms=1".encode()

    async def one() -> tuple[int, int]:
        response = await client.request(("127.0.0.1", port), b"GET", target, [], b"")
        size = chunks = 0
        async for chunk in response.stream():
            size, chunks = size + len(chunk), chunks + 1
        await response.aclose()
        return size, chunks

    try:
        results = await asyncio.gather(*(one() for _ in range(streams)))
    finally:
        await client.aclose()
    return sum(r[0] for r in results), sum(r[1] for r in results)


def measure_sse(stack: Stack, opts: Options) -> list[SseRun]:
    import uvloop

    runs = []
    for name, service, path in stack.targets():
        uvloop.run(sse_streams(service.port, path, 2, 20))  # warm up
        before, started = service.cpu(), time.perf_counter()
        size, chunks = uvloop.run(
            sse_streams(service.port, path, opts.sse_streams, opts.sse_events)
        )
        elapsed, used = time.perf_counter() - started, service.cpu() - before
        events = opts.sse_streams * opts.sse_events
        if size != events * len(SSE_EVENT):
            raise RuntimeError(f"SSE via {name}: {size} bytes, expected {events * len(SSE_EVENT)}")
        runs.append(SseRun(name, events, used / events * 1e6, chunks / events, elapsed))
        print(
            f"  {name:8} SSE {events} events  {used / events * 1e6:6.1f} us/event  "
            f"{chunks / events:.2f} chunks/event",
            flush=True,
        )
    return runs


# -- report -------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def by(runs: list[Run], target: str, concurrency: int) -> Run:
    return next(r for r in runs if r.target == target and r.concurrency == concurrency)


def matrix_tables(runs: list[Run], label: str) -> str:
    rows = [
        [
            {"direct": "direct (upstream CPU)", "gateway": label, "nginx": "nginx"}[r.target],
            str(r.concurrency),
            f"{r.rps:.0f}",
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.2f}",
            f"{r.cpu_us:.0f}",
            str(r.errors),
        ]
        for r in runs
    ]
    out = table(["target", "c", "req/s", "p50 ms", "p99 ms", "CPU us/req", "errors"], rows)
    ratios = []
    for concurrency in sorted({r.concurrency for r in runs}):
        d, g, n = (by(runs, t, concurrency) for t in ("direct", "gateway", "nginx"))
        ratios.append(
            [
                str(concurrency),
                f"{g.rps / d.rps:.2f}",
                f"{g.rps / n.rps:.2f}",
                f"{n.rps / d.rps:.2f}",
                f"{g.p50_ms - d.p50_ms:+.3f}",
                f"{n.p50_ms - d.p50_ms:+.3f}",
                f"{g.cpu_us / n.cpu_us:.1f}",
            ]
        )
    header = [
        "c",
        "gateway/direct",
        "gateway/nginx",
        "nginx/direct",
        "gateway added p50 ms",
        "nginx added p50 ms",
        "CPU gateway/nginx",
    ]
    return out + "\n\n" + table(header, ratios)


def one_core_table(runs: list[Run]) -> str:
    d, g, n = (by(runs, t, 64) for t in ("direct", "gateway", "nginx"))
    row = [
        f"{d.rps:.0f}",
        f"{g.rps:.0f}",
        f"{n.rps:.0f}",
        f"{g.rps / d.rps:.2f}",
        f"{g.rps / n.rps:.2f}",
        f"{g.cpu_us:.0f}",
        f"{n.cpu_us:.0f}",
    ]
    header = [
        "direct req/s",
        "gateway req/s",
        "nginx req/s",
        "gateway/direct",
        "gateway/nginx",
        "gateway CPU us/req",
        "nginx CPU us/req",
    ]
    return table(header, [row])


def sse_table(runs: list[SseRun], label: str) -> str:
    names = {"direct": "direct (upstream CPU)", "gateway": label, "nginx": "nginx"}
    rows = [
        [
            names[r.target],
            str(r.events),
            f"{r.cpu_us:.1f}",
            f"{r.chunks_per_event:.2f}",
            f"{r.seconds:.2f}",
        ]
        for r in runs
    ]
    return table(["target", "events", "CPU us/event", "chunks/event", "wall s"], rows)


def verdicts(runs: list[Run], one_core: list[Run], sse: list[SseRun]) -> str:
    g1, d1 = by(runs, "gateway", 1), by(runs, "direct", 1)
    g64 = by(runs, "gateway", 64)
    worst_cpu = max(r.cpu_us for r in runs if r.target == "gateway")
    rows = [
        (
            "added p50 at c=1",
            f"<= {TARGET_ADDED_P50_MS} ms",
            g1.p50_ms - d1.p50_ms,
            g1.p50_ms - d1.p50_ms <= TARGET_ADDED_P50_MS,
            "{:.3f} ms",
        ),
        (
            "CPU per request (worst c)",
            f"<= {TARGET_CPU_US:.0f} us",
            worst_cpu,
            worst_cpu <= TARGET_CPU_US,
            "{:.0f} us",
        ),
        (
            "CPU per request c=64 / c=1",
            "not rising (<= 1.10)",
            g64.cpu_us / g1.cpu_us,
            g64.cpu_us / g1.cpu_us <= 1.10,
            "{:.2f}",
        ),
    ]
    if one_core:
        d, g, n = (by(one_core, t, 64) for t in ("direct", "gateway", "nginx"))
        rows += [
            (
                "one core c=64: gateway/direct",
                f">= {TARGET_VS_DIRECT}",
                g.rps / d.rps,
                g.rps / d.rps >= TARGET_VS_DIRECT,
                "{:.2f}",
            ),
            (
                "one core c=64: gateway/nginx",
                f">= {TARGET_VS_NGINX}",
                g.rps / n.rps,
                g.rps / n.rps >= TARGET_VS_NGINX,
                "{:.2f}",
            ),
        ]
    if sse:
        s = next(r for r in sse if r.target == "gateway")
        rows.append(
            (
                "SSE CPU per event",
                f"<= {TARGET_SSE_US:.0f} us",
                s.cpu_us,
                s.cpu_us <= TARGET_SSE_US,
                "{:.1f} us",
            )
        )
    return table(
        ["target (issue 4, trivial upstream)", "goal", "measured", "ok"],
        [
            [name, goal, fmt.format(value), "yes" if ok else "**no**"]
            for name, goal, value, ok, fmt in rows
        ],
    )


def machine_info() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = []
    for module in ("uvicorn", "uvloop", "httptools"):
        with contextlib.suppress(Exception):
            versions.append(f"{module} {__import__(module).__version__}")
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return "\n".join(
        [
            f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
            f"- machine: {platform.node()}, {model}, {os.cpu_count()} CPUs, "
            f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {platform.platform()}",
            f"- python {platform.python_version()}; {', '.join(versions)}",
            f"- {nginx.removeprefix('nginx version: ')} (worker_processes 1, "
            f"upstream keepalive 64); {wrk_version.split(' Copyright')[0].strip()} (-t1)",
        ]
    )


def run(opts: Options) -> str:
    sections = ["# Gateway hot path: direct vs gateway vs nginx", "", machine_info(), ""]
    label = opts.gateway_label
    sections.append(
        f"- gateway: `{opts.gateway_cmd}` ({label}); path `{opts.gateway_path}`\n"
        f"- trivial upstream: each cell is the median of {opts.rounds} rounds of "
        f"{opts.seconds} s (after {opts.warmup} s of warm-up), the three targets interleaved "
        f"in rotating order; agent: 1 round of {2 * opts.seconds} s. CPU: /proc/PID/stat "
        "of the measured process tree"
    )
    workloads = [trivial_workload()] + ([agent_workload()] if opts.agent else [])
    one_core_ok = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp) if "{registry}" in opts.gateway_cmd else None
        try:
            for workload in workloads:
                print(f"{workload.name}:", flush=True)
                lua = tmp / f"{workload.service}.lua"
                lua.write_text(workload.lua)
                stack = start_stack(workload, opts, tmp, registry.url if registry else None)
                # The agent answers ~100 requests/s whatever is in front of it: one
                # longer round is enough to see the hop's cost there.
                trivial = workload.name == "trivial"
                rounds = opts.rounds if trivial else 1
                seconds = opts.seconds if trivial else 2 * opts.seconds
                try:
                    runs = measure_matrix(stack, lua, opts, (1, 16, 64), None, rounds, seconds)
                    sse = measure_sse(stack, opts) if workload.name == "trivial" else []
                    one_core: list[Run] = []
                    if one_core_ok:
                        print("  one core (upstream and proxy on CPU 0, wrk on CPU 1):")
                        for service in (stack.upstream, stack.gateway, stack.nginx):
                            service.pin("0")
                        one_core = measure_matrix(stack, lua, opts, (64,), "1", rounds, seconds)
                finally:
                    stack.stop()
                sections += ["", f"## Upstream: {workload.name}", "", matrix_tables(runs, label)]
                if sse:
                    sections += [
                        "",
                        f"### SSE: {opts.sse_streams} streams x {opts.sse_events} "
                        "events, 1 ms apart",
                        "",
                        sse_table(sse, label),
                    ]
                if one_core:
                    sections += [
                        "",
                        "### One core: upstream and proxy pinned to CPU 0, wrk to CPU 1, c=64",
                        "",
                        one_core_table(one_core),
                    ]
                if workload.name == "trivial":
                    sections += ["", "### Targets", "", verdicts(runs, one_core, sse)]
        finally:
            if registry is not None:
                registry.stop()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    sections += ["", f"Load average at the end: {load} (other work on the machine shows here)."]
    return "\n".join(sections) + "\n"


def start_registry(tmp: Path) -> Service:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "meshgate",
        "--log-level",
        "warning",
        "registry",
        "--port",
        str(port),
        "--backend",
        "memory",
        "--allow-private",
    ]
    return Service("registry", argv, port, "/readyz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    up = sub.add_parser("upstream", help="serve the trivial upstream (used by the bench)")
    up.add_argument("--port", type=int, required=True)
    core = sub.add_parser("proxy-core", help="serve the proxy core (used by the bench)")
    core.add_argument("--port", type=int, required=True)
    core.add_argument("--upstream", required=True, help="http://host:port")
    parser.add_argument(
        "--proxy-core",
        action="store_true",
        help="measure the bare proxy core (the upstream client alone) instead of the gateway",
    )
    parser.add_argument(
        "--gateway-cmd",
        default=None,
        help="command of the gateway under test; placeholders {python} {port} "
        "{upstream_url} {upstream_host} {upstream_port} {registry} (a registry "
        "is started only if used)",
    )
    parser.add_argument("--gateway-label", default=None, help="its name in the tables")
    parser.add_argument(
        "--gateway-path",
        default=None,
        help="request path at the gateway; {service} is the upstream's "
        "registered name (bench-trivial, summarizer), e.g. /a2a/{service}/",
    )
    parser.add_argument("--seconds", type=int, default=2, help="wrk duration per cell")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per cell, trivial upstream (median kept)"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-agent", action="store_true", help="trivial upstream only")
    parser.add_argument("--sse-streams", type=int, default=16)
    parser.add_argument("--sse-events", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print, write no result file")
    args = parser.parse_args()
    if args.mode == "upstream":
        upstream_main(args.port)
        return
    if args.mode == "proxy-core":
        proxy_core_main(args.port, args.upstream)
        return
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    if args.gateway_cmd is None:
        args.gateway_cmd = PROXY_CORE_CMD if args.proxy_core else GATEWAY_CMD
    if args.gateway_path is None:
        args.gateway_path = "/" if args.gateway_cmd == PROXY_CORE_CMD else "/a2a/{service}/"
    label = args.gateway_label or (
        "proxy core" if args.gateway_cmd == PROXY_CORE_CMD else "gateway"
    )
    opts = Options(
        args.gateway_cmd,
        label,
        args.gateway_path,
        args.seconds,
        args.warmup,
        args.rounds,
        not args.no_agent,
        not args.no_write,
        args.sse_streams,
        args.sse_events,
    )
    report = run(opts)
    print()
    print(report)
    if opts.write:
        out = ROOT / "bench" / "results" / f"gateway-{datetime.date.today().isoformat()}.md"
        out.write_text(report)
        print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
