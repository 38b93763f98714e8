"""Mixed client load through a gateway: A2A messages and MCP tool calls, each
with a deadline, each written to a :class:`~tests.chaos.ledger.Ledger`.

A request that fails in a way a client may retry (the gateway's 502/503/504,
a transport error) is sent again while its deadline allows, after the pause
its ``Retry-After`` asks for; an A2A retry carries the same ``messageId``,
which the agent must not run twice. A
request the client has to cut at its deadline is a ``hang``.
"""

from __future__ import annotations

import itertools
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from tests.chaos.ledger import OK, Ledger

__all__ = ["LoadSettings", "MixedLoad"]

TEXT = (
    "The gateway watches the registry and keeps the last good table. "
    "Replicas of one agent share a service name. A replica that dies is ejected. "
    "A slow upstream times out. Clients get an answer or an explicit error."
)
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "chaos", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
#: Outcomes a client retries: the request may not have run, or ran where it died.
RETRIABLE = frozenset({"http-502", "http-503", "http-504"})


@dataclass(frozen=True)
class LoadSettings:
    """The shape of the load."""

    gateway: str
    concurrency: int = 8
    #: Seconds from a request's first send to the end of its last retry.
    deadline: float = 8.0
    #: Share of requests that are MCP tool calls (the rest: A2A messages).
    mcp_share: float = 0.5
    agent: str = "summarizer"
    skill: str = "summarize"
    tool: str = "calc__evaluate"
    max_attempts: int = 5
    #: Pause between a failed attempt and its retry (longer when ``Retry-After`` says so).
    backoff: float = 0.2
    seed: int = 1


@dataclass
class MixedLoad:
    """``concurrency`` workers sending back to back until :meth:`stop`."""

    settings: LoadSettings
    client: httpx.AsyncClient
    ledger: Ledger = field(default_factory=Ledger)
    _stopped: bool = False
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def stop(self) -> None:
        self._stopped = True

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for worker in range(self.settings.concurrency):
                tg.start_soon(self._worker, random.Random(self.settings.seed * 1000 + worker))

    async def _worker(self, rng: random.Random) -> None:
        while not self._stopped:
            if rng.random() < self.settings.mcp_share:
                await self._request("mcp", "")
            else:
                await self._request("a2a", str(uuid.uuid4()))

    async def _request(self, kind: str, message_id: str) -> None:
        entry = self.ledger.open(kind, message_id, self.settings.deadline)
        number = next(self._numbers)
        outcome, task_id, detail = "hang", "", ""
        backoff = self.settings.backoff
        # The client's own cut: anything still open at its deadline is a hang.
        with anyio.move_on_after(self.settings.deadline):
            while True:
                entry.attempts += 1
                remaining = entry.deadline - time.monotonic()
                pause = backoff
                try:
                    if kind == "a2a":
                        response = await self._a2a(message_id, number, remaining)
                        outcome, task_id = _a2a_outcome(response)
                    else:
                        response = await self._mcp(number, remaining)
                        outcome = _mcp_outcome(response, number)
                    pause = max(backoff, _retry_after(response))
                    detail = "" if outcome == OK else response.text[:300]
                except httpx.TimeoutException:
                    outcome, detail = "hang", ""
                except httpx.HTTPError as exc:
                    outcome, detail = f"transport:{type(exc).__name__}", str(exc)[:300]
                retry = outcome in RETRIABLE or outcome.startswith("transport:")
                if not retry or entry.attempts >= self.settings.max_attempts:
                    break
                if entry.deadline - time.monotonic() < pause + backoff:
                    break
                await anyio.sleep(pause)
        entry.close(outcome, task_id=task_id, detail=detail)

    async def _a2a(self, message_id: str, number: int, within: float) -> httpx.Response:
        s = self.settings
        body = {
            "jsonrpc": "2.0",
            "id": number,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": message_id,
                    "role": "ROLE_USER",
                    "parts": [{"text": f"{TEXT} Request {number}."}],
                },
                "metadata": {"skill": s.skill},
            },
        }
        return await self.client.post(
            f"{s.gateway}/a2a/{s.agent}/",
            json=body,
            headers={"A2A-Version": "1.0"},
            timeout=within,
        )

    async def _mcp(self, number: int, within: float) -> httpx.Response:
        s = self.settings
        # A new expression each time: a cached answer would hide the upstream.
        arguments = {"expression": f"{number} + 1"}
        body = {
            "jsonrpc": "2.0",
            "id": number,
            "method": "tools/call",
            "params": {"_meta": META, "name": s.tool, "arguments": arguments},
        }
        headers = {
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": "tools/call",
            "mcp-name": s.tool,
            "accept": "application/json, text/event-stream",
        }
        return await self.client.post(
            f"{s.gateway}/mcp", json=body, headers=headers, timeout=within
        )


def _a2a_outcome(response: httpx.Response) -> tuple[str, str]:
    """How an A2A answer ended, and the task it named."""
    answer = _json(response)
    if response.status_code != 200:
        return f"http-{response.status_code}", ""
    if answer is None:
        return "malformed", ""
    if "error" in answer:
        return f"rpc-{answer['error'].get('code')}", ""
    task = (answer.get("result") or {}).get("task") or {}
    state = str((task.get("status") or {}).get("state", ""))
    if state != "TASK_STATE_COMPLETED":
        return f"task-{state.removeprefix('TASK_STATE_').lower() or 'missing'}", ""
    return OK, str(task.get("id", ""))


def _mcp_outcome(response: httpx.Response, number: int) -> str:
    """How a ``tools/call`` answer ended (its result must hold ``number + 1``)."""
    answer = _json(response)
    if response.status_code != 200:
        return f"http-{response.status_code}"
    if answer is None:
        return "malformed"
    if "error" in answer:
        return f"rpc-{answer['error'].get('code')}"
    result = answer.get("result") or {}
    if result.get("isError"):
        return f"tool-error ({_reason(result)})"
    if str(number + 1) not in str(result.get("content")):
        return "wrong-answer"
    return OK


def _retry_after(response: httpx.Response) -> float:
    """The seconds a ``Retry-After`` header asks for (0 without one)."""
    try:
        return min(float(response.headers.get("retry-after", "0")), 5.0)
    except ValueError:
        return 0.0


def _reason(result: dict[str, Any]) -> str:
    """The first words of an isError result (the gateway names what failed there)."""
    content = result.get("content") or [{}]
    text = str(content[0].get("text", "")) if isinstance(content[0], dict) else ""
    words = [w for w in re.split(r"\W+", text.lower()) if w and not w.isdigit()]
    return " ".join(words[:5]) or "no text"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
