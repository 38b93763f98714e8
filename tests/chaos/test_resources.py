"""Slow and idle clients do not starve others (a real ``meshgate gateway`` process).

* Slowloris: clients sending a request head a byte at a time get a 408 and
  lose their connection once ``--header-timeout`` has passed since their
  first byte (uvicorn alone keeps them forever), and others are served
  meanwhile.
* 1,000 idle SSE clients (MCP sessions' ``GET /mcp`` streams) take no
  admission slot: requests are served while they listen, even with
  ``--max-concurrent`` far below 1,000 (each held a slot before); past
  ``--max-streams`` a new stream gets 503 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.chaos.ledger import OK, Ledger
from tests.chaos.load import LoadSettings, MixedLoad
from tests.chaos.mesh import ChaosMesh, MeshSettings, chaos_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

HEADER_TIMEOUT = 1.5
SLOW_CLIENTS = 200
IDLE_STREAMS = 1000
LEGACY = "2025-06-18"


async def _load_for(mesh: ChaosMesh, seconds: float) -> Ledger:
    """Mixed requests for ``seconds``; the ledger of how they ended."""
    async with httpx.AsyncClient(trust_env=False) as client:
        load = MixedLoad(LoadSettings(mesh.gateway, concurrency=4, max_attempts=1), client)
        async with anyio.create_task_group() as tg:
            tg.start_soon(load.run)
            await anyio.sleep(seconds)
            load.stop()
    return load.ledger


def _address(mesh: ChaosMesh) -> tuple[str, int]:
    host, port = mesh.gateway.removeprefix("http://").split(":")
    return host, int(port)


async def _slow_client(mesh: ChaosMesh, closed: list[float], answers: list[bytes]) -> None:
    """Send a head a byte every 0.2 s until the gateway closes the connection."""
    reader, writer = await asyncio.open_connection(*_address(mesh))
    head = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"a" * 500
    first = time.monotonic()
    received = b""
    try:
        for byte in head:
            writer.write(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    chunk = await reader.read(1024)
                    received += chunk
                    if not chunk:
                        break
    except ConnectionError:
        pass
    finally:
        closed.append(time.monotonic() - first)
        answers.append(received)
        writer.close()


@pytest.fixture
async def slowloris_mesh(tmp_path: Path) -> AsyncIterator[ChaosMesh]:
    settings = MeshSettings(
        agents=1, tools=1, gateway_args=("--header-timeout", str(HEADER_TIMEOUT))
    )
    async with chaos_mesh(settings, tmp_path) as mesh:
        yield mesh


async def test_slowloris_clients_get_408_and_are_closed_while_others_are_served(
    slowloris_mesh: ChaosMesh,
) -> None:
    mesh = slowloris_mesh
    closed: list[float] = []
    answers: list[bytes] = []
    async with anyio.create_task_group() as tg:
        for _ in range(SLOW_CLIENTS):
            tg.start_soon(_slow_client, mesh, closed, answers)
        ledger = await _load_for(mesh, HEADER_TIMEOUT + 1.5)
    assert len(closed) == SLOW_CLIENTS
    # Closed by the gateway (not by running out of bytes: 500 bytes take 100 s).
    assert max(closed) < HEADER_TIMEOUT + 2.0, sorted(closed)[-5:]
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:40] for a in answers}
    outcomes = {e.outcome for e in ledger.entries}
    assert outcomes == {OK}, outcomes
    assert len(ledger.entries) > 20


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    slowloris_mesh: ChaosMesh,
) -> None:
    reader, writer = await asyncio.open_connection(*_address(slowloris_mesh))
    opened = time.monotonic()
    with anyio.fail_after(HEADER_TIMEOUT + 2.0):
        answer = await reader.read()
    assert time.monotonic() - opened >= HEADER_TIMEOUT - 0.1
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def _session(client: httpx.AsyncClient, mcp: str) -> str:
    """A handshake-era MCP session (initialize, initialized); its id."""
    headers = {"accept": "application/json, text/event-stream"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "idle", "version": "1"},
        },
    }
    response = await client.post(mcp, json=init, headers=headers)
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    headers |= {"mcp-session-id": session, "mcp-protocol-version": LEGACY}
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await client.post(mcp, json=done, headers=headers)).status_code == 202
    return session


async def _listen(mesh: ChaosMesh, session: str) -> tuple[bytes, asyncio.StreamWriter]:
    """Open the session's GET /mcp stream and read its status line; the stream stays open."""
    reader, writer = await asyncio.open_connection(*_address(mesh))
    writer.write(
        b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        + f"mcp-session-id: {session}\r\nmcp-protocol-version: {LEGACY}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], writer


async def test_a_thousand_idle_sse_clients_do_not_starve_requests(tmp_path: Path) -> None:
    settings = MeshSettings(
        agents=1,
        tools=1,
        gateway_args=("--max-concurrent", "64", "--max-streams", str(IDLE_STREAMS)),
    )
    writers: list[asyncio.StreamWriter] = []
    async with (
        chaos_mesh(settings, tmp_path) as mesh,
        httpx.AsyncClient(trust_env=False, timeout=10) as client,
    ):
        try:
            sessions = [await _session(client, mesh.gateway + "/mcp") for _ in range(IDLE_STREAMS)]
            for session in sessions:
                status, writer = await _listen(mesh, session)
                writers.append(writer)
                assert status == b"HTTP/1.1 200 OK", status
            ledger = await _load_for(mesh, 3.0)
            assert {e.outcome for e in ledger.entries} == {OK}
            assert len(ledger.entries) > 20
            # Past --max-streams: 503 at once, never a wait.
            extra = await _session(client, mesh.gateway + "/mcp")
            with anyio.fail_after(2):
                status, writer = await _listen(mesh, extra)
            writers.append(writer)
            assert status == b"HTTP/1.1 503 Service Unavailable", status
        finally:
            for writer in writers:
                writer.close()
