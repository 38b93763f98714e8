"""``meshgate registry --backend consul`` as a real process, against the Consul double."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.registry.consul.test_registries import tool_server
from tests.support.consul_double import ConsulDouble, running_in_thread
from tests.support.live import free_port
from tests.support.processes import MeshProcess, processes

TOKEN = "consul-token-0c5e1d"


@pytest.mark.e2e
def test_the_registry_process_uses_consul_with_its_flags_and_never_logs_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", TOKEN)  # the child inherits it
    monkeypatch.delenv("CONSUL_HTTP_ADDR", raising=False)
    with running_in_thread(ConsulDouble(token=TOKEN, datacenter="east")) as (double, consul):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = ["--log-level", "debug", "registry", "--port", str(port), "--backend", "consul"]
        args += ["--consul-addr", consul, "--consul-datacenter", "east"]
        args += ["--consul-consistency", "stale", "--allow-private"]
        with processes() as started:
            registry = MeshProcess("registry", args, url, tmp_path)
            started.append(registry)
            registry.wait_ready()
            body = tool_server(1).model_dump(mode="json")
            put = httpx.put(f"{url}/v1/services/calc/instances/calc-1", json=body, timeout=10)
            assert put.status_code == 201, put.text
            listed = httpx.get(f"{url}/v1/instances", timeout=10).json()
            assert [i["id"] for i in listed] == ["calc-1"]
        reads = [q for _, path, q in double.requests if path.startswith("/v1/health/")]
        assert reads
        assert all("dc=east" in q and "stale=1" in q for q in reads)
        assert TOKEN not in registry.log.read_text()
