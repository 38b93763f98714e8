"""Agent and tool-server benchmark: A2A SendMessage and MCP tools/call round trips.

Starts a reference agent (``meshgate agent summarizer``, SQLite task store) and a
reference tool server (``meshgate mcp-server calc``) as real processes on
127.0.0.1, then times, at c=1 and c=16:

* A2A ``SendMessage`` (JSON-RPC, ``A2A-Version: 1.0``) to the summarizer;
* MCP ``tools/call evaluate`` to calc, one stateless 2026-07-28 POST each;
* ``GET /healthz`` of each process, the floor of one round trip (same client).

It reports requests/s, p50 and p99 latency, and the server's CPU per request
(from ``/proc/PID/stat``). Run: ``.venv/bin/python bench/agents.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sys
import tempfile
import uuid
from typing import Any

import httpx
from harness import ROOT, Call, Process, Row, drive, free_port, healthz

TEXT = (
    "The with statement wraps the execution of a block with methods defined by a "
    "context manager. It allows common try, except and finally usage patterns to be "
    "encapsulated for convenient reuse. Context managers enter and exit runtime "
    "contexts. The statement calls the manager's enter method before the block and "
    "its exit method after it, even when the block raises."
)


def send_message(url: str) -> Call:
    async def call(client: httpx.AsyncClient) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": str(uuid.uuid4()),
                    "role": "ROLE_USER",
                    "parts": [{"text": TEXT}],
                    "metadata": {"skill": "summarize"},
                }
            },
        }
        response = await client.post(url + "/", json=body, headers={"A2A-Version": "1.0"})
        answer = response.json()
        state = answer.get("result", {}).get("task", {}).get("status", {}).get("state")
        if state != "TASK_STATE_COMPLETED":
            raise RuntimeError(f"SendMessage did not complete: {str(answer)[:300]}")

    return call


def call_tool(url: str) -> Call:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "evaluate",
        "Accept": "application/json, text/event-stream",
    }

    async def call(client: httpx.AsyncClient) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "evaluate", "arguments": {"expression": "17*23"}, "_meta": meta},
        }
        answer: dict[str, Any] = (
            await client.post(url + "/mcp", json=body, headers=headers)
        ).json()
        result = answer.get("result") or {}
        if result.get("isError") or "391" not in str(result.get("structuredContent")):
            raise RuntimeError(f"tools/call failed: {str(answer)[:300]}")

    return call


async def run(count: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="meshgate-bench-") as data:
        agent_port, tools_port = free_port(), free_port()
        agent = Process(
            "summarizer",
            ["agent", "summarizer", "--port", str(agent_port), "--data", data],
            agent_port,
        )
        tools = Process("calc", ["mcp-server", "calc", "--port", str(tools_port)], tools_port)
        try:
            await asyncio.gather(agent.ready(), tools.ready())
            limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
            rows: list[Row] = []
            async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
                for concurrency in (1, 16):
                    for op, proc, call in (
                        ("agent GET /healthz (floor)", agent, healthz(agent.url)),
                        ("A2A SendMessage (summarize)", agent, send_message(agent.url)),
                        ("calc GET /healthz (floor)", tools, healthz(tools.url)),
                        ("MCP tools/call evaluate", tools, call_tool(tools.url)),
                    ):
                        rows.append(await drive(op, proc, client, call, count, concurrency))
            return rows
        finally:
            agent.stop()
            tools.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="requests per row (1000)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = asyncio.run(run(args.count))
    header = ["op", "c", "count", "req/s", "p50 ms", "p99 ms", "CPU of", "CPU µs/req"]
    lines = [
        f"- machine: nproc {os.cpu_count()}, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}",
        "- client: one pooled httpx.AsyncClient in the bench process (its cost is in the "
        "latency; the /healthz rows are the floor of one round trip)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        out = ROOT / "bench" / "results" / f"agents-{datetime.date.today().isoformat()}.md"
        out.write_text("# bench/agents.py\n\n" + report + "\n")
        print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
