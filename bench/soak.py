"""Soak: a real gateway's memory over 100,000 requests while instances come and go.

    .venv/bin/python bench/soak.py                      # 100,000 requests, ~5 minutes here
    .venv/bin/python bench/soak.py --requests 20000     # a shorter look
    .venv/bin/python bench/soak.py --no-write           # print only

Processes (stopped by their PIDs): ``meshgate registry`` (memory backend),
``meshgate gateway``, one ``summarizer`` agent and one ``calc`` tool server.
The load, at ``--concurrency``: MCP ``calc__evaluate`` calls, each with a new
expression (so the result cache fills and evicts, as with real arguments),
``--a2a-share`` (20 %) A2A ``SendMessage`` to the summarizer, 10 %
``GET /v1/agents``. Each A2A task is remembered by the gateway (follow-ups
reach the replica that owns it) in a table bounded at 100,000 tasks, about
260 bytes each: ``--a2a-share 0`` measures the rest alone.
Churn: every ``--churn-every`` requests a new instance of ``calc`` is
registered (the calc process's URL under a new instance name) and the oldest
churned one deregistered, so the gateway's route table, upstream state and
tool catalogue see instances come and go throughout.

The gateway's resident set (``VmRSS`` in ``/proc``) is read at each
checkpoint; the verdict compares 100,000 with 10,000: growth within 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import ROOT, Process, free_port

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "soak", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
TEXT = "The gateway keeps serving while instances come and go. " * 4


@dataclass
class Checkpoint:
    requests: int
    rss_kib: int
    errors: int
    churned: int
    elapsed: float


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Soak:
    def __init__(
        self, gateway: str, registry: str, calc_record: dict[str, Any], a2a_share: float
    ) -> None:
        self.a2a_share = a2a_share
        self.gateway = gateway
        self.registry = registry
        self.calc = calc_record
        self.sent = 0
        self.errors = 0
        self.failures: list[str] = []
        self.churned = 0
        self.live: list[str] = []
        self.numbers = itertools.count()

    async def one(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        number = next(self.numbers)
        pick = rng.random()
        if pick < 0.9 - self.a2a_share:
            body = {
                "jsonrpc": "2.0",
                "id": number,
                "method": "tools/call",
                "params": {
                    "_meta": META,
                    "name": "calc__evaluate",
                    "arguments": {"expression": f"{number} * 2"},
                },
            }
            headers = {
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call",
                "mcp-name": "calc__evaluate",
                "accept": "application/json, text/event-stream",
            }
            response = await client.post(self.gateway + "/mcp", json=body, headers=headers)
            ok = response.status_code == 200 and str(number * 2) in response.text
        elif pick < 0.9:
            body = {
                "jsonrpc": "2.0",
                "id": number,
                "method": "SendMessage",
                "params": {
                    "message": {
                        "messageId": str(uuid.uuid4()),
                        "role": "ROLE_USER",
                        "parts": [{"text": TEXT}],
                    },
                    "metadata": {"skill": "summarize"},
                },
            }
            response = await client.post(
                self.gateway + "/a2a/summarizer/", json=body, headers={"A2A-Version": "1.0"}
            )
            ok = response.status_code == 200 and "TASK_STATE_COMPLETED" in response.text
        else:
            response = await client.get(self.gateway + "/v1/agents")
            ok = response.status_code == 200
        if not ok:
            self.errors += 1
            if len(self.failures) < 5:
                self.failures.append(
                    f"{response.request.method} {response.url.path}: "
                    f"{response.status_code} {response.text[:300]}"
                )

    async def churn(self, client: httpx.AsyncClient) -> None:
        """Register one more calc instance; deregister the oldest churned one."""
        name = f"calc-churn-{self.churned}"
        self.churned += 1
        path = f"{self.registry}/v1/services/calc/instances/{name}"
        body = {k: self.calc[k] for k in ("kind", "url", "tools", "tags", "meta")}
        body["check"] = {"interval_seconds": 0, "ttl_seconds": 3600}
        (await client.put(path, json=body)).raise_for_status()
        (await client.put(path + "/heartbeat")).raise_for_status()
        self.live.append(path)
        if len(self.live) > 3:
            (await client.delete(self.live.pop(0))).raise_for_status()


async def soak(
    total: int, concurrency: int, churn_every: int, checkpoints: list[int], a2a_share: float
) -> list[Checkpoint]:
    registry_port, gateway_port, agent_port, calc_port = (free_port() for _ in range(4))
    registry = Process(
        "registry",
        [
            "registry",
            "--port",
            str(registry_port),
            "--backend",
            "memory",
            "--allow-cidr",
            "127.0.0.0/8",
        ],
        registry_port,
    )
    await registry.ready()
    procs = [registry]
    tmp = tempfile.TemporaryDirectory(prefix="meshgate-soak-")
    data = Path(tmp.name)
    try:
        gateway = Process(
            "gateway",
            ["gateway", "--port", str(gateway_port), "--registry", registry.url],
            gateway_port,
        )
        agent = Process(
            "summarizer",
            [
                "agent",
                "summarizer",
                "--port",
                str(agent_port),
                "--registry",
                registry.url,
                "--data",
                str(data),
                "--instance",
                "summarizer-soak",
            ],
            agent_port,
        )
        calc = Process(
            "calc",
            [
                "mcp-server",
                "calc",
                "--port",
                str(calc_port),
                "--registry",
                registry.url,
                "--instance",
                "calc-soak",
            ],
            calc_port,
        )
        procs += [gateway, agent, calc]
        for proc in (gateway, agent, calc):
            await proc.ready()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as client:
            record = (
                await client.get(f"{registry.url}/v1/services/calc/instances/calc-soak")
            ).json()
            run = Soak(gateway.url, registry.url, record, a2a_share)
            deadline = time.monotonic() + 30
            while True:  # until the gateway routes calc and the summarizer
                run.errors = 0
                for seed in range(10):
                    await run.one(client, random.Random(seed))
                if run.errors == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not route the mesh within 30 s")
                await asyncio.sleep(0.1)
            run.errors = 0
            run.failures.clear()
            results: list[Checkpoint] = []
            started = time.monotonic()
            remaining = iter(sorted(checkpoints))
            next_mark = next(remaining)

            async def worker(seed: int) -> None:
                nonlocal next_mark
                rng = random.Random(seed)
                while run.sent < total:
                    run.sent += 1
                    if run.sent % churn_every == 0:
                        await run.churn(client)
                    await run.one(client, rng)
                    if run.sent >= next_mark:
                        results.append(
                            Checkpoint(
                                next_mark,
                                rss_kib(gateway.proc.pid),
                                run.errors,
                                run.churned,
                                time.monotonic() - started,
                            )
                        )
                        mib = results[-1].rss_kib / 1024
                        print(
                            f"  {next_mark:>7,} requests: gateway RSS {mib:.1f} MiB",
                            file=sys.stderr,
                            flush=True,
                        )
                        next_mark = next(remaining, total + 1)

            await asyncio.gather(*(worker(i) for i in range(concurrency)))
        for failure in run.failures:
            print(f"  failed: {failure}", file=sys.stderr)
        return results
    finally:
        for proc in reversed(procs):
            proc.stop()
        tmp.cleanup()


def table(results: list[Checkpoint], baseline: int) -> str:
    base = next(r for r in results if r.requests == baseline)
    lines = [
        f"| requests | gateway RSS (MiB) | vs {baseline:,} | errors | instances churned "
        "| elapsed (s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        growth = (r.rss_kib - base.rss_kib) / base.rss_kib * 100
        lines.append(
            f"| {r.requests:,} | {r.rss_kib / 1024:.1f} | {growth:+.1f} % | {r.errors} | "
            f"{r.churned} | {r.elapsed:.0f} |"
        )
    last = results[-1]
    growth = (last.rss_kib - base.rss_kib) / base.rss_kib * 100
    verdict = "within" if growth <= 10 else "NOT within"
    lines.append("")
    lines.append(
        f"{last.requests:,} vs {baseline:,} requests: {growth:+.1f} % ({verdict} the 10 % promise)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--churn-every", type=int, default=500)
    parser.add_argument(
        "--a2a-share",
        type=float,
        default=0.2,
        help="share of A2A messages (each new task is one more entry of the gateway's "
        "bounded task-affinity table, 100,000 at most)",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    marks = sorted(
        {
            args.baseline,
            *range(args.baseline, args.requests + 1, max(1, args.requests // 10)),
            args.requests,
        }
    )
    results = asyncio.run(
        soak(args.requests, args.concurrency, args.churn_every, marks, args.a2a_share)
    )
    out = table(results, args.baseline)
    print(out)
    if not args.no_write:
        stamp = datetime.date.today().isoformat()
        path = ROOT / "bench" / "results" / f"soak-{stamp}-a2a{args.a2a_share:g}.md"
        command = f"python bench/soak.py --requests {args.requests} --a2a-share {args.a2a_share}"
        path.write_text(f"# Gateway soak ({stamp})\n\n`{command}`\n\n{out}\n")
        print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
