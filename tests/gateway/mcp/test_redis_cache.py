"""The result cache in a real Redis (Debian's ``redis-server``, started on a loopback port
by the test): gateways sharing it share results, and losing it leaves calls working."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as redis
from mcp import Client

from gateway.mcp import McpSettings
from gateway.mcp.cache import CacheSettings
from tests.gateway.mcp.counting import CountingMesh, counting_mesh, metric, rpc
from tests.support.live import free_port

pytestmark = pytest.mark.anyio

HITS, MISSES = "meshgate_mcp_cache_hits_total", "meshgate_mcp_cache_misses_total"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` on 127.0.0.1, stopped by its PID."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "redis-server is not installed: `make peers` installs Debian's redis-server "
            "with apt-get, which was not possible here"
        )
    with tempfile.TemporaryDirectory() as workdir:
        for attempt in range(3):  # the free port may be taken before redis binds it
            port = free_port()
            command = [binary, "--port", str(port), "--bind", "127.0.0.1"]
            command += ["--save", "", "--appendonly", "no", "--dir", workdir]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            server = RedisServer(process, port)
            deadline = time.monotonic() + 10
            while process.poll() is None and not _pong(port) and time.monotonic() < deadline:
                time.sleep(0.02)  # polling the process's readiness, with a deadline
            if process.poll() is None and _pong(port):
                break
            server.stop()
            if attempt == 2:
                raise RuntimeError("redis-server did not start")
        try:
            yield server
        finally:
            server.stop()


async def lookup(mesh: CountingMesh, gateway: int, key: str) -> Any:
    url = mesh.gateways[gateway] + "/mcp"
    params = {"name": "counter__lookup", "arguments": {"key": key}}
    answer = await rpc(mesh.http, url, "tools/call", params)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["structuredContent"]


async def test_a_second_gateway_sharing_the_redis_gets_the_cache_hit() -> None:
    with redis_server() as server:
        shared = McpSettings(cache=CacheSettings(enabled=True, url=server.url, ttl=30))
        async with counting_mesh(shared, shared) as mesh:
            first = await lookup(mesh, 0, "shared")
            second = await lookup(mesh, 1, "shared")
            async with Client(mesh.gateways[1] + "/mcp", mode="legacy", cache=None) as client:
                third = await client.call_tool("counter__lookup", {"key": "shared"})
            assert mesh.calls["lookup:shared"] == 1
            assert first == second == third.structured_content == {"key": "shared", "calls": 1}
            tool = "counter__lookup"
            assert await metric(mesh.http, mesh.gateways[0], MISSES, tool) == 1
            assert await metric(mesh.http, mesh.gateways[0], HITS, tool) == 0
            assert await metric(mesh.http, mesh.gateways[1], HITS, tool) == 2
            assert await metric(mesh.http, mesh.gateways[1], MISSES, tool) == 0
            store = redis.Redis.from_url(server.url)
            try:
                [key] = await store.keys("meshgate:mcp:result:*")
                assert 0 < await store.pttl(key) <= 30_000
            finally:
                await store.aclose()


async def test_calls_keep_working_when_the_redis_goes_away() -> None:
    with redis_server() as server:
        settings = McpSettings(cache=CacheSettings(enabled=True, url=server.url))
        async with counting_mesh(settings) as mesh:
            await lookup(mesh, 0, "kept")
            await lookup(mesh, 0, "kept")
            assert mesh.calls["lookup:kept"] == 1
            server.stop()
            for _ in range(2):
                assert await lookup(mesh, 0, "kept") == {
                    "key": "kept",
                    "calls": mesh.calls["lookup:kept"],
                }
            assert mesh.calls["lookup:kept"] == 3
            text = (await mesh.http.get(mesh.gateways[0] + "/metrics")).text
            errors = [
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("meshgate_mcp_cache_errors_total")
            ]
            assert errors
            assert errors[0] >= 1
