"""MCP through the gateway: tools/call via the gateway vs direct, and tools/list at 50 upstreams.

Starts a registry (memory backend), the reference tool server (``meshgate
mcp-server calc``, registered with the registry) and two gateways as real
processes on 127.0.0.1 -- one with ``--no-cache`` (every call goes upstream),
one with the default result cache -- then, paired in one run:

* times MCP ``tools/call evaluate`` directly to calc's ``/mcp`` and
  ``tools/call calc__evaluate`` through the uncached gateway's ``/mcp`` (one
  stateless 2026-07-28 POST each), with ``GET /healthz`` of each process as the
  floor of one round trip, at c=1 and c=16; and the same call answered from the
  cached gateway's result cache (``evaluate`` is read-only and idempotent);
* registers 49 more tool servers (``tools-01`` .. ``tools-49``, 5 tools each, all
  pointing at calc's URL) through the registry's HTTP API, waits until the
  gateway lists every tool, and times ``tools/list`` through the gateway at c=1:
  stateless 2026-07-28 requests, and requests in a handshake-era session
  (2025-11-25, answered by the SDK server).

It reports requests/s, p50 and p99 latency, the CPU per request of the process
that answered (from ``/proc/PID/stat``), and the targets of issue 5: the gateway's
added p50 at c=1 <= 0.5 ms; ``tools/list`` over 50 upstreams p50 <= 10 ms.
Run: ``.venv/bin/python bench/mcp.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from harness import ROOT, Call, Process, Row, drive, free_port, healthz, percentile

EXTRA_SERVERS = 49
TOOLS_PER_SERVER = 5
ADDED_P50_TARGET_MS = 0.5
LIST_P50_TARGET_MS = 10.0
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def mcp_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": method,
        "Accept": "application/json, text/event-stream",
    }
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def call_tool(url: str, tool: str) -> Call:
    headers = mcp_headers("tools/call", tool)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"expression": "17*23"}, "_meta": META},
    }

    async def call(client: httpx.AsyncClient) -> None:
        answer: dict[str, Any] = (
            await client.post(url + "/mcp", json=body, headers=headers)
        ).json()
        result = answer.get("result") or {}
        if result.get("isError") or "391" not in str(result.get("structuredContent")):
            raise RuntimeError(f"tools/call {tool} failed: {str(answer)[:300]}")

    return call


LIST_BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
LEGACY = "2025-11-25"


async def legacy_session(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Open a handshake-era session at ``url``/mcp; the headers its requests carry."""
    accept = {"Accept": "application/json, text/event-stream"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    }
    response = await client.post(url + "/mcp", json=initialize, headers=accept)
    session = response.headers.get("mcp-session-id")
    if response.status_code != 200 or not session:
        raise RuntimeError(f"initialize failed ({response.status_code}): {response.text[:300]}")
    headers = {**accept, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await client.post(url + "/mcp", json=note, headers=headers)
    return headers


def legacy_list_call(url: str, headers: dict[str, str], tools: int) -> Call:
    """tools/list in a session, timed to the last byte; checked by the number of tools."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    async def call(client: httpx.AsyncClient) -> None:
        response = await client.post(url + "/mcp", json=body, headers=headers)
        data = response.text
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            data = next(
                (line[5:].strip() for line in data.splitlines() if line.startswith("data:")), ""
            )
        listed = (json.loads(data or "{}").get("result") or {}).get("tools") or []
        if response.status_code != 200 or len(listed) != tools:
            raise RuntimeError(f"session tools/list answered {response.status_code}: {data[:300]}")

    return call


async def list_tools(client: httpx.AsyncClient, url: str) -> tuple[list[str], int]:
    """The tool names the gateway lists, and the size of its answer in bytes."""
    response = await client.post(url + "/mcp", json=LIST_BODY, headers=mcp_headers("tools/list"))
    answer: dict[str, Any] = response.json()
    tools = (answer.get("result") or {}).get("tools")
    if response.status_code != 200 or not isinstance(tools, list):
        raise RuntimeError(f"tools/list failed ({response.status_code}): {str(answer)[:300]}")
    return [str(tool.get("name")) for tool in tools], len(response.content)


def list_call(url: str, size: int) -> Call:
    """tools/list, timed to the last byte; checked by status and size (JSON not parsed)."""
    headers = mcp_headers("tools/list")

    async def call(client: httpx.AsyncClient) -> None:
        response = await client.post(url + "/mcp", json=LIST_BODY, headers=headers)
        if response.status_code != 200 or len(response.content) != size:
            raise RuntimeError(f"tools/list answered {response.status_code}, {response.text[:300]}")

    return call


async def wait_for_tools(
    client: httpx.AsyncClient, url: str, check: Callable[[list[str]], bool], within: float
) -> tuple[list[str], int]:
    deadline = time.monotonic() + within
    names: list[str] = []
    while time.monotonic() < deadline:
        try:
            names, size = await list_tools(client, url)
            if check(names):
                return names, size
        except (httpx.TransportError, RuntimeError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the gateway's tools/list did not settle within {within} s: {names[:10]}")


def registration(service: str, calc_url: str) -> dict[str, Any]:
    tools = [
        {
            "name": f"tool_{k}",
            "description": f"Tool {k} of {service}: evaluates an arithmetic expression "
            "and returns its value.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "expression": {"type": "string", "description": "For example 17*23."},
                    "precision": {"type": "integer", "minimum": 0, "maximum": 20},
                },
                "required": ["expression"],
            },
        }
        for k in range(TOOLS_PER_SERVER)
    ]
    return {
        "kind": "mcp-server",
        "url": calc_url + "/mcp",
        "tools": tools,
        "check": {"interval_seconds": 0, "ttl_seconds": 600},
    }


async def register_extra(client: httpx.AsyncClient, registry_url: str, calc_url: str) -> None:
    for i in range(1, EXTRA_SERVERS + 1):
        service = f"tools-{i:02d}"
        path = f"{registry_url}/v1/services/{service}/instances/{service}-1"
        response = await client.put(path, json=registration(service, calc_url))
        if response.status_code not in (200, 201):
            raise RuntimeError(f"register {service}: {response.status_code} {response.text[:300]}")
        response = await client.put(path + "/heartbeat", json={"status": "passing"})
        if response.status_code != 200:
            raise RuntimeError(f"heartbeat {service}: {response.status_code} {response.text[:300]}")


@dataclass
class Result:
    load: tuple[float, float]  # 1-minute load average at the start and the end
    rows: list[Row]
    list_rows: list[Row]
    tool_count: int
    list_bytes: int


async def run(count: int, list_count: int) -> Result:
    load = os.getloadavg()[0]
    registry_port, calc_port, gateway_port, cached_port = (free_port() for _ in range(4))
    registry = Process(
        "registry",
        [
            "registry",
            "--backend",
            "memory",
            "--allow-cidr",
            "127.0.0.0/8",
            "--port",
            str(registry_port),
        ],
        registry_port,
    )
    started: list[Process] = [registry]
    try:
        await registry.ready()
        calc = Process(
            "calc",
            ["mcp-server", "calc", "--port", str(calc_port), "--registry", registry.url],
            calc_port,
        )
        started.append(calc)
        gateway = Process(
            "gateway",
            ["gateway", "--port", str(gateway_port), "--registry", registry.url, "--no-cache"],
            gateway_port,
        )
        started.append(gateway)
        cached = Process(
            "gateway (cache)",
            ["gateway", "--port", str(cached_port), "--registry", registry.url],
            cached_port,
        )
        started.append(cached)
        await asyncio.gather(calc.ready(), gateway.ready("/v1/agents"), cached.ready("/v1/agents"))
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
            names, _ = await wait_for_tools(
                client, gateway.url, lambda names: "calc__evaluate" in names, within=30
            )
            await wait_for_tools(
                client, cached.url, lambda names: "calc__evaluate" in names, within=30
            )
            rows: list[Row] = []
            for concurrency in (1, 16):
                for op, proc, call in (
                    ("calc GET /healthz (floor)", calc, healthz(calc.url)),
                    ("direct tools/call evaluate", calc, call_tool(calc.url, "evaluate")),
                    ("gateway GET /healthz (floor)", gateway, healthz(gateway.url)),
                    (
                        "gateway tools/call calc__evaluate",
                        gateway,
                        call_tool(gateway.url, "calc__evaluate"),
                    ),
                ):
                    rows.append(await drive(op, proc, client, call, count, concurrency))
            hit = call_tool(cached.url, "calc__evaluate")
            op = "gateway tools/call calc__evaluate (cache hit)"
            rows.append(await drive(op, cached, client, hit, count, 1))

            await register_extra(client, registry.url, calc.url)
            expected = len(names) + EXTRA_SERVERS * TOOLS_PER_SERVER
            names, size = await wait_for_tools(
                client, gateway.url, lambda names: len(names) >= expected, within=30
            )
            servers = 1 + EXTRA_SERVERS
            op = f"gateway tools/list ({servers} tool servers, 2026-07-28)"
            list_rows = [
                await drive(op, gateway, client, list_call(gateway.url, size), list_count, 1)
            ]
            session = await legacy_session(client, gateway.url)
            op = f"gateway tools/list ({servers} tool servers, {LEGACY} session)"
            call = legacy_list_call(gateway.url, session, len(names))
            list_rows.append(await drive(op, gateway, client, call, list_count, 1))
            return Result((load, os.getloadavg()[0]), rows, list_rows, len(names), size)
    finally:
        for proc in reversed(started):
            proc.stop()


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]


def report(result: Result, count: int) -> str:
    by_op = {(row.op, row.concurrency): row for row in result.rows}
    direct = by_op[("direct tools/call evaluate", 1)].p50_ms()
    via = by_op[("gateway tools/call calc__evaluate", 1)].p50_ms()
    added = via - direct
    stateless, session = result.list_rows
    list_p50 = stateless.p50_ms()
    list_p99 = percentile(stateless.latencies, 99) * 1e3
    session_p99 = percentile(session.latencies, 99) * 1e3
    header = ["op", "c", "count", "req/s", "p50 ms", "p99 ms", "CPU of", "CPU µs/req"]
    targets = [
        [
            "gateway added p50, tools/call, c=1",
            f"{added:.2f} ms ({via:.2f} - {direct:.2f})",
            f"<= {ADDED_P50_TARGET_MS} ms",
            "ok" if added <= ADDED_P50_TARGET_MS else "no",
        ],
        [
            f"tools/list p50, {1 + EXTRA_SERVERS} tool servers, {result.tool_count} tools",
            f"{list_p50:.2f} ms (p99 {list_p99:.2f} ms, body {result.list_bytes:,} B)",
            f"<= {LIST_P50_TARGET_MS:.0f} ms",
            "ok" if list_p50 <= LIST_P50_TARGET_MS else "no",
        ],
        [
            f"tools/list p50, same, in a {LEGACY} session",
            f"{session.p50_ms():.2f} ms (p99 {session_p99:.2f} ms)",
            f"<= {LIST_P50_TARGET_MS:.0f} ms",
            "ok" if session.p50_ms() <= LIST_P50_TARGET_MS else "no",
        ],
    ]
    lines = [
        f"- machine: nproc {os.cpu_count()}, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}; load average {result.load[0]:.1f} at the "
        f"start, {result.load[1]:.1f} at the end (other work shares the machine)",
        "- processes: registry (memory backend), calc tool server, gateway (--no-cache), "
        "gateway (result cache on, for the cache-hit row); all on 127.0.0.1, sharing the "
        "machine with the bench client",
        "- client: one pooled httpx.AsyncClient in the bench process (its cost is in the "
        "latency; the /healthz rows are the floor of one round trip to each process); "
        f"{count} calls per row after 20 warm-up calls",
        "",
        *table(header, [row.cells() for row in [*result.rows, *result.list_rows]]),
        "",
        *table(["goal", "measured", "target", "ok"], targets),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="calls per tools/call row (500)")
    parser.add_argument("--list-count", type=int, default=300, help="tools/list calls (300)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    text = report(asyncio.run(run(args.count, args.list_count)), args.count)
    print(text)
    if not args.no_write:
        out = ROOT / "bench" / "results" / f"mcp-{datetime.date.today().isoformat()}.md"
        out.write_text("# bench/mcp.py\n\n" + text + "\n")
        print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
