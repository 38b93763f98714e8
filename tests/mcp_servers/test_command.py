"""``meshgate mcp-server``: flags, and a real process that registers and deregisters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import anyio
import httpx
import pytest
from click.testing import CliRunner

from meshgate.commands.mcp_server import mcp_server
from registry.backends import MemoryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.support.live import serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

_RUN = "from meshgate.commands.mcp_server import mcp_server; mcp_server()"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nothing"], "neither a reference server"),
        (["calc", "--instance", "Not Valid", "--registry", "http://127.0.0.1:1"], "DNS label"),
        (["calc", "--host", "0.0.0.0", "--port", "8000", "--registry", "http://r"], "public_url"),
    ],
)
def test_bad_flags_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(mcp_server, args)
    assert result.exit_code == 2
    assert message in result.output


def test_help_names_the_reference_servers() -> None:
    result = CliRunner().invoke(mcp_server, ["--help"])
    assert result.exit_code == 0
    assert "knowledge, calc" in result.output
    assert "--allowed-host" in result.output


async def test_a_real_process_registers_passes_and_deregisters_on_sigterm() -> None:
    registry_app = create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback()))
    async with (
        serve(registry_app) as registry_url,
        httpx.AsyncClient(base_url=registry_url) as client,
    ):

        async def instances() -> list[dict[str, object]]:
            found: list[dict[str, object]] = (
                await client.get("/v1/services/calc/instances")
            ).json()
            return found

        process = await anyio.open_process(
            [sys.executable, "-c", _RUN, "calc", "--port", "0", "--instance", "calc-cli"],
            env={**os.environ, "MESHGATE_REGISTRY_URL": registry_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        async with process:
            try:
                found = await eventually(
                    instances,
                    lambda items: bool(items) and items[0]["health"] == "passing",
                    within=20,
                )
                assert found[0]["id"] == "calc-cli"
                assert str(found[0]["url"]).startswith("http://127.0.0.1:")
                process.send_signal(signal.SIGTERM)
                with anyio.fail_after(15):
                    assert await process.wait() == 0
            finally:
                if process.returncode is None:
                    process.kill()
        assert await instances() == []
