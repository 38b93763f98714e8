"""compose/docker-compose.yml: valid for the compose CLI in both profiles, and what it runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import REPO, run, tool

COMPOSE = REPO / "compose" / "docker-compose.yml"
MESH = {"gateway", "knowledge", "calc", "planner", "researcher", "summarizer", "calculator"}


def config(profile: str | None, compose: Path = COMPOSE) -> dict[str, Any]:
    profiles = ("--profile", profile) if profile else ()
    argv = (tool("docker-compose"), "-f", str(compose), *profiles, "config", "--format", "json")
    result = run(*argv)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.mark.parametrize("profile", [None, "embedded"])
def test_both_profiles_pass_compose_config(profile: str | None) -> None:
    profiles = ("--profile", profile) if profile else ()
    result = run(tool("docker-compose"), "-f", str(COMPOSE), *profiles, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_default_runs_consul_and_embedded_runs_sqlite_without_it() -> None:
    full = config(None)["services"]
    embedded = config("embedded")["services"]
    assert {"consul", "registry", "prometheus", "jaeger", *MESH} <= set(full)
    assert "registry-embedded" not in full
    assert "--backend" in full["registry"]["command"]
    assert full["registry"]["command"][full["registry"]["command"].index("--backend") + 1] == (
        "consul"
    )
    assert "consul" not in embedded
    assert "registry" not in embedded
    command = embedded["registry-embedded"]["command"]
    assert command[command.index("--backend") + 1] == "sqlite"
    assert "registry" in embedded["registry-embedded"]["networks"]["default"]["aliases"]


@pytest.mark.parametrize("profile", [None, "embedded"])
def test_every_port_is_published_on_loopback_only(profile: str | None) -> None:
    published = [
        (name, port)
        for name, service in config(profile)["services"].items()
        for port in service.get("ports", [])
    ]
    assert published
    assert all(port["host_ip"] == "127.0.0.1" for _, port in published), published


def test_mesh_services_are_healthchecked_limited_restarted_and_hardened() -> None:
    services = config("embedded")["services"]
    for name in MESH | {"registry-embedded"}:
        service = services[name]
        assert service["restart"] == "unless-stopped", name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "healthcheck" in service, name
    assert services["researcher"]["deploy"]["replicas"] == 2
    waits = services["gateway"]["depends_on"]["registry-embedded"]
    assert waits["condition"] == "service_healthy"


def test_a_broken_compose_file_fails_config(tmp_path: Path) -> None:
    broken = tmp_path / "compose"
    shutil.copytree(REPO / "compose", broken, ignore=shutil.ignore_patterns("wheels"))
    text = (broken / "docker-compose.yml").read_text()
    # A depends_on condition compose does not know.
    (broken / "docker-compose.yml").write_text(
        text.replace("condition: service_healthy", "condition: service_happy", 1)
    )
    result = run(tool("docker-compose"), "-f", str(broken / "docker-compose.yml"), "config", "-q")
    assert result.returncode != 0
    assert "condition value must be one of" in result.stderr
