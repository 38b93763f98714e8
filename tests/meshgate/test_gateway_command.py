from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from meshgate.cli import main
from tests.support.live import free_port
from tests.support.processes import MeshProcess, processes


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "--registry"),
        (["--registry", "http://127.0.0.1:1", "--balancer", "random"], {}, "--balancer"),
        (["--registry", "http://127.0.0.1:1", "--jwt-secret-env", "NOPE"], {}, "NOPE"),
        (
            ["--registry", "http://127.0.0.1:1", "--jwt-secret-env", "S"],
            {"S": "x" * 40},
            "issuer",
        ),
        (["--registry", "http://127.0.0.1:1", "--jwt-secret-env", "S"], {"S": "short"}, "32"),
    ],
)
def test_bad_gateway_flags_fail_clearly(args: list[str], env: dict[str, str], message: str) -> None:
    result = CliRunner().invoke(main, ["gateway", *args], env=env)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.e2e
def test_gateway_process_routes_from_the_registry_and_requires_its_key(tmp_path: Path) -> None:
    registry_port, gateway_port = free_port(), free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    with processes() as started:
        started.append(
            MeshProcess(
                "registry",
                ["registry", "--port", str(registry_port), "--backend", "memory"],
                registry_url,
                tmp_path,
            )
        )
        started[0].wait_ready()
        gateway = MeshProcess(
            "gateway",
            [
                *("gateway", "--port", str(gateway_port), "--registry", registry_url),
                *("--api-key", "gateway-key"),
            ],
            gateway_url,
            tmp_path,
        )
        started.append(gateway)
        gateway.wait_ready()  # /readyz is public: ready once the route table loaded
        assert httpx.get(gateway_url + "/v1/agents").status_code == 401
        listed = httpx.get(gateway_url + "/v1/agents", headers={"x-api-key": "gateway-key"})
        assert listed.status_code == 200
        assert listed.json() == []
        metrics = httpx.get(gateway_url + "/metrics", headers={"x-api-key": "gateway-key"})
        assert "meshgate_gateway_route_table_stale 0.0" in metrics.text
        assert gateway.stop() == 0
