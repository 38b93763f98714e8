"""The reference scenario ``meshgate demo`` runs against a mesh: each step a user-visible claim.

A step passes only if what it checks is there in the answer (a number, citations,
named tools), so the demo fails loudly when the mesh does not do what the README says.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

__all__ = ["QUESTION", "Step", "StepResult", "reference_steps", "run_steps"]

#: The planner splits it: the researcher cites the knowledge base, the calculator computes.
QUESTION = "What does the with statement do, and what is 17*23?"
AGENTS = frozenset({"planner", "researcher", "summarizer", "calculator"})
TOOL_SERVERS = frozenset({"knowledge", "calc"})


class StepFailed(Exception):
    """What a step expected and did not see."""


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class StepResult:
    title: str
    ok: bool
    detail: str
    seconds: float


async def run_steps(
    steps: list[Step], report: Callable[[StepResult], None] | None = None
) -> list[StepResult]:
    """Every step in order (a failed step does not stop the next); each result as it lands."""
    results = []
    for step in steps:
        started = time.perf_counter()
        try:
            detail, ok = await step.run(), True
        except StepFailed as failed:
            detail, ok = str(failed), False
        except Exception as exc:  # a step's crash is its failure, reported, not a traceback
            detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
        result = StepResult(step.title, ok, detail, time.perf_counter() - started)
        if report is not None:
            report(result)
        results.append(result)
    return results


def reference_steps(
    gateway: str, http: httpx.AsyncClient, api_key: str | None = None, ready_within: float = 60
) -> list[Step]:
    """The README's scenario against the gateway at ``gateway``."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    def mcp_client() -> Client:
        client = create_mcp_http_client(headers=headers or None)
        transport = streamable_http_client(gateway + "/mcp", http_client=client)
        return Client(transport, mode="2026-07-28", cache=None)

    async def routable() -> tuple[dict[str, Any], set[str]]:
        """The agents the gateway routes to, and the services whose tools /mcp lists."""
        response = await http.get(gateway + "/v1/agents", headers=headers)
        agents = {a["name"]: a for a in response.json()} if response.status_code == 200 else {}
        async with mcp_client() as client:
            names = {t.name for t in (await client.list_tools()).tools}
        return agents, {n.split("__")[0] for n in names if "__" in n}

    async def mesh_ready() -> str:
        deadline = time.monotonic() + ready_within
        agents: dict[str, Any] = {}
        services: set[str] = set()
        while time.monotonic() < deadline:
            try:
                agents, services = await routable()
            except Exception:  # not up yet: the gateway or its /mcp does not answer
                agents, services = {}, set()
            if set(agents) >= AGENTS and services >= TOOL_SERVERS:
                up = ", ".join(f"{n} x{agents[n]['routable']}" for n in sorted(agents))
                return f"agents: {up}; tool servers: {', '.join(sorted(TOOL_SERVERS))}"
            await anyio.sleep(0.2)  # polling the gateway until the deadline
        missing = sorted((AGENTS - set(agents)) | (TOOL_SERVERS - services))
        raise StepFailed(f"after {ready_within:.0f} s these are not routable: {missing}")

    async def planner_answers() -> str:
        response = await http.post(
            gateway + "/v1/invoke/planner",
            json={"text": QUESTION},
            headers=headers,
            timeout=httpx.Timeout(10, read=120),
        )
        if response.status_code != 200:
            raise StepFailed(f"HTTP {response.status_code}: {response.text[:200]}")
        answer = response.json()
        if answer.get("state") != "completed":
            raise StepFailed(f"the task ended {answer.get('state')}: {answer.get('error')}")
        text = str(answer.get("text", ""))
        citations = answer.get("citations") or []
        if "391" not in text:
            raise StepFailed(f"no 391 (17*23) in the answer: {text[:200]!r}")
        if not citations:
            raise StepFailed("the answer cites no source")
        return f"answer has 391 and {len(citations)} citation(s)"

    async def mcp_lists() -> str:
        async with mcp_client() as client:
            names = {t.name for t in (await client.list_tools()).tools}
        servers = {n.split("__")[0] for n in names if "__" in n}
        missing = (TOOL_SERVERS | AGENTS) - servers
        if missing or "calc__evaluate" not in names:
            raise StepFailed(f"tools/list lacks {sorted(missing) or ['calc__evaluate']}")
        return f"{len(names)} tools from {len(servers) - 1} services and the mesh"

    async def mcp_calls() -> str:
        async with mcp_client() as client:
            tool = await client.call_tool("calc__evaluate", {"expression": "17*23"})
            skill = await client.call_tool("calculator__calculate", {"text": "What is 2**10?"})
        if tool.is_error or (tool.structured_content or {}).get("value") != 391:
            raise StepFailed(f"calc__evaluate(17*23) answered {_text(tool)!r}")
        if skill.is_error or "1024" not in _text(skill):
            raise StepFailed(f"calculator__calculate answered {_text(skill)!r}")
        return "calc__evaluate(17*23) = 391; calculator__calculate(2**10) = 1024"

    return [
        Step("the gateway routes to every agent and tool server", mesh_ready),
        Step("the planner answers through the gateway, with citations", planner_answers),
        Step("an MCP client lists the mesh's tools at /mcp", mcp_lists),
        Step("an MCP client calls a tool and an agent skill", mcp_calls),
    ]


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))
