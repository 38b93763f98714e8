from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from meshgate.cli import main
from tests.e2e.test_registry_process import wait_ready
from tests.support.live import free_port


def test_help_lists_the_registry_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "registry" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "nosuch"], "unknown registry backend"),
        (["--allow-cidr", "10.0.0.0/33"], "--allow-cidr"),
        (["--port", "70000"], "--port"),
    ],
)
def test_bad_registry_flags_fail_with_a_clear_message(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["registry", *args])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.e2e
def test_api_keys_come_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {"MESHGATE_REGISTRY_API_KEYS": "alpha, beta", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "meshgate", "registry", "--port", str(port)]
    command += ["--backend", "memory", "--allow-private", "--api-key", "gamma"]
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        body = {"kind": "mcp-server", "url": "http://127.0.0.1:9/mcp"}
        assert httpx.put(base + "/v1/services/calc/instances/c-1", json=body).status_code == 401
        for key in ("alpha", "beta", "gamma"):
            path = f"{base}/v1/services/calc-{key}/instances/c-1"
            response = httpx.put(path, json=body, headers={"authorization": f"Bearer {key}"})
            assert response.status_code == 201
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
