"""k8s/: each overlay renders with kustomize and validates strictly; what the pods get."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import REPO, Run, run, tool

OVERLAYS = sorted(p.name for p in (REPO / "k8s" / "overlays").iterdir() if p.is_dir())
K8S_VERSION = "1.31.0"


def render(overlay: Path) -> str:
    result = run(tool("kubectl"), "kustomize", str(overlay))
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate(manifests: str) -> Run:
    argv = (tool("kubernetes-validate"), "--strict", "--quiet", "-k", K8S_VERSION, "-")
    return run(*argv, stdin=manifests)


def objects(overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(REPO / "k8s" / "overlays" / overlay)) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_there_are_dev_and_prod_overlays() -> None:
    assert OVERLAYS == ["dev", "prod"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay: str) -> None:
    result = validate(render(REPO / "k8s" / "overlays" / overlay))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_probed_limited_and_locked_down(overlay: str) -> None:
    deployments = of_kind(objects(overlay), "Deployment")
    assert {"registry", "gateway", "knowledge", "calc", "planner", "researcher"} <= set(deployments)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert "startupProbe" in container, name
            assert container["resources"]["limits"]["memory"], name
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_and_agents_autoscale_and_have_disruption_budgets(overlay: str) -> None:
    docs = objects(overlay)
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in of_kind(docs, "HorizontalPodAutoscaler").values()
    }
    assert {"gateway", "planner", "researcher", "summarizer", "calculator"} <= scaled
    assert {"gateway", "researcher"} <= set(of_kind(docs, "PodDisruptionBudget"))
    policies = of_kind(docs, "NetworkPolicy")
    assert policies["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_dev_runs_the_embedded_registry_and_prod_runs_it_on_consul() -> None:
    dev = next(iter(of_kind(objects("dev"), "ConfigMap").values()))["data"]
    prod_docs = objects("prod")
    prod = next(iter(of_kind(prod_docs, "ConfigMap").values()))["data"]
    assert dev["MESHGATE_REGISTRY_BACKEND"] == "sqlite"
    assert prod["MESHGATE_REGISTRY_BACKEND"] == "consul"
    assert prod["CONSUL_HTTP_ADDR"].startswith("http")
    assert of_kind(prod_docs, "Deployment")["registry"]["spec"]["replicas"] == 2


def test_a_manifest_with_an_unknown_field_fails_strict_validation(tmp_path: Path) -> None:
    shutil.copytree(REPO / "k8s", tmp_path / "k8s")
    gateway = tmp_path / "k8s" / "base" / "gateway.yaml"
    # A misspelt field: accepted by kustomize, refused by --strict.
    gateway.write_text(gateway.read_text().replace("readinessProbe:", "readynessProbe:", 1))
    result = validate(render(tmp_path / "k8s" / "overlays" / "dev"))
    assert result.returncode != 0
    assert "readynessProbe" in result.stdout + result.stderr


def test_a_kustomization_naming_a_missing_file_fails_to_render(tmp_path: Path) -> None:
    shutil.copytree(REPO / "k8s", tmp_path / "k8s")
    kustomization = tmp_path / "k8s" / "base" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("agents.yaml", "agentz.yaml"))
    result = run(tool("kubectl"), "kustomize", str(tmp_path / "k8s" / "overlays" / "prod"))
    assert result.returncode != 0
    assert "agentz.yaml" in result.stderr
