"""Pooled SDK sessions to upstreams that speak only the handshake versions.

A tool server built on an older SDK (2024-11-05 to 2025-11-25) refuses the
stateless 2026-07-28 ``tools/call`` the gateway sends: HTTP 400 with a JSON-RPC
error that answers no request of ours ("Missing session ID", "Unsupported
protocol version"). Such an instance is remembered, and its calls go over one
long-lived SDK session per endpoint URL (``initialize`` once, then requests on
it), never a new client per call. A session that breaks is dropped and the
next call opens a fresh one; a session unused for ``idle_after`` seconds is
closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client
from mcp.shared.exceptions import MCPError

__all__ = ["LegacySessions", "refuses_stateless"]

logger = logging.getLogger("meshgate.gateway.mcp")


def refuses_stateless(status: int, raw: bytes, request_id: Any) -> bool:
    """Whether an answer says "I do not speak 2026-07-28", not "your call is wrong".

    An SDK that predates the stateless era answers our well-formed request with
    a 400 whose JSON-RPC error carries an id of its own (``"server-error"``,
    ``null``): it never got as far as reading the request.
    """
    if status != 400:
        return False
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(answer, dict) and "error" in answer and answer.get("id") != request_id


class _Held:
    """One open session, kept by a task of the pool's task group."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: Client | None = None
        self.closing = anyio.Event()
        self.last_used = time.monotonic()

    async def hold(self, *, task_status: TaskStatus[None]) -> None:
        try:
            async with Client(self.url, mode="legacy", cache=None) as client:
                self.client = client
                task_status.started()
                await self.closing.wait()
        except Exception as exc:  # the upstream went away: the next call reconnects
            if self.client is None:
                raise
            logger.info("legacy MCP session to %s ended: %r", self.url, exc)
        finally:
            self.client = None


class LegacySessions:
    """Handshake-era sessions by endpoint URL; :meth:`running` must wrap their use."""

    def __init__(self, *, idle_after: float = 300.0, connect_timeout: float = 10.0) -> None:
        self.idle_after = idle_after
        self.connect_timeout = connect_timeout
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._tg: TaskGroup | None = None

    def __len__(self) -> int:
        return sum(1 for held in self._held.values() if held.client is not None)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._close_idle)
            try:
                yield
            finally:
                self._tg = None
                for held in self._held.values():
                    held.closing.set()
                self._held.clear()
                tg.cancel_scope.cancel()

    async def call_tool(
        self,
        url: str,
        name: str,
        arguments: Mapping[str, Any] | None,
        meta: Mapping[str, Any] | None,
        read_timeout: float,
    ) -> types.CallToolResult:
        """``tools/call`` over the session to ``url``; the SDK's errors propagate.

        Raises :class:`~mcp.shared.exceptions.MCPError` for the upstream's
        protocol errors and other exceptions when the session fails.
        """
        held = await self._session(url)
        client = held.client
        if client is None:
            raise ConnectionError(f"the session to {url} closed")
        held.last_used = time.monotonic()
        try:
            return await client.call_tool(
                name,
                dict(arguments or {}),
                read_timeout_seconds=read_timeout,
                meta=dict(meta) if meta else None,  # type: ignore[arg-type]
            )
        except Exception as exc:
            if not isinstance(exc, MCPError):
                self._drop(url, held)
            raise

    async def _session(self, url: str) -> _Held:
        held = self._held.get(url)
        if held is not None and held.client is not None:
            return held
        lock = self._locks.setdefault(url, anyio.Lock())
        async with lock:
            held = self._held.get(url)
            if held is not None and held.client is not None:
                return held
            if self._tg is None:
                raise RuntimeError("LegacySessions used outside running()")
            held = _Held(url)
            with anyio.fail_after(self.connect_timeout):
                await self._tg.start(held.hold)
            self._held[url] = held
            return held

    def _drop(self, url: str, held: _Held) -> None:
        held.closing.set()
        if self._held.get(url) is held:
            del self._held[url]

    async def _close_idle(self) -> None:
        while True:
            await anyio.sleep(min(self.idle_after, 60.0))
            now = time.monotonic()
            for url, held in list(self._held.items()):
                if now - held.last_used >= self.idle_after or held.client is None:
                    self._drop(url, held)
