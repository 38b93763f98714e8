"""compose/prometheus.yml: promtool accepts it, and it scrapes every compose component."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.deploy.tools import REPO, run, tool

PROMETHEUS = REPO / "compose" / "prometheus.yml"


def test_promtool_accepts_the_config() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_refuses_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "prometheus.yml"
    broken.write_text(PROMETHEUS.read_text().replace("scrape_interval: 5s", "scrape_interval: 5"))
    result = run(tool("promtool"), "check", "config", str(broken))
    assert result.returncode != 0
    assert "not a valid duration" in result.stdout + result.stderr


def test_every_meshgate_service_of_the_compose_mesh_is_scraped() -> None:
    compose = run(
        tool("docker-compose"),
        "-f",
        str(REPO / "compose" / "docker-compose.yml"),
        "config",
        "--format",
        "json",
    )
    services = json.loads(compose.stdout)["services"]
    meshgate = {name for name, s in services.items() if s.get("image", "").startswith("meshgate")}
    config = yaml.safe_load(PROMETHEUS.read_text())
    scraped = {
        name
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert meshgate
    assert meshgate <= scraped, meshgate - scraped
