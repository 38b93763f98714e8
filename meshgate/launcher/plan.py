"""From a :class:`MeshSpec` to the concrete processes: names, ports, command lines."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from meshgate.launcher.ports import HOST, PortAllocator, port_in_use
from meshgate.launcher.spec import KINDS, Component, MeshSpec

__all__ = ["LaunchOptions", "PortInUseError", "ProcessSpec", "plan_mesh"]

#: Seconds an agent's in-flight tasks get on shutdown: the whole mesh stops within 10 s.
AGENT_GRACE = 3
#: Seconds each kind gets between SIGTERM and SIGKILL (9 s in all, stage by stage).
STOP_GRACE = {"agent": 4.0, "mcp-server": 1.5, "gateway": 1.5, "registry": 2.0}


class PortInUseError(Exception):
    """Fixed ports that something else already listens on."""

    def __init__(self, taken: list[tuple[str, int]]) -> None:
        self.taken = taken
        names = ", ".join(f"{port} ({name})" for name, port in taken)
        super().__init__(f"port already in use: {names}")


@dataclass(frozen=True)
class LaunchOptions:
    """What ``meshgate up`` was asked for besides the mesh file."""

    #: Where the registry's SQLite file and the agents' task stores live.
    data_dir: Path
    #: Overrides the gateway's port from the mesh file.
    gateway_port: int | None = None
    #: Children log JSON lines (else the human format).
    log_json: bool = True
    #: The children's ``--log-level`` (``warning`` leaves little but trouble).
    log_level: str = "info"
    python: str = sys.executable


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: ``researcher-2`` of component ``researcher``."""

    name: str
    component: str
    kind: str
    port: int
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 30.0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stage(self) -> int:
        """Stop order, last first: registry 0, gateway 1, tool servers 2, agents 3."""
        return KINDS.index(self.kind)

    @property
    def start_stage(self) -> int:
        """Start order: the registry, then everything else at once.

        Everything else needs only the registry to start: each registers itself,
        and the gateway picks up whoever registers, before or after it.
        """
        return 0 if self.kind == "registry" else 1

    @property
    def stop_grace(self) -> float:
        return STOP_GRACE[self.kind]


def plan_mesh(spec: MeshSpec, options: LaunchOptions) -> tuple[ProcessSpec, ...]:
    """Every process of the mesh in start order; raises :class:`PortInUseError` first."""
    fixed = {c.name: c.port for c in spec.components if c.port is not None}
    if options.gateway_port is not None:
        fixed[spec.gateway.name] = options.gateway_port
    taken = [(name, port) for name, port in fixed.items() if port_in_use(port)]
    if taken:
        raise PortInUseError(taken)
    ports = PortAllocator(set(fixed.values()))
    registry = spec.of_kind("registry")[0]
    registry_url = f"http://{HOST}:{fixed.get(registry.name) or ports.allocate()}"
    gateway_port = fixed.get(spec.gateway.name) or ports.allocate()
    gateway_url = f"http://{HOST}:{gateway_port}"
    known = {registry.name: registry_url, spec.gateway.name: gateway_url}
    log_format = "--log-json" if options.log_json else "--log-human"
    prefix = (options.python, "-m", "meshgate", log_format, "--log-level", options.log_level)
    processes: list[ProcessSpec] = []
    for component in sorted(spec.components, key=lambda c: KINDS.index(c.kind)):
        for replica in range(1, component.replicas + 1):
            name = component.name if component.replicas == 1 else f"{component.name}-{replica}"
            url = known.get(component.name)
            port = int(url.rsplit(":", 1)[1]) if url else fixed.get(name) or ports.allocate()
            args = _arguments(component, port, registry_url, gateway_url, options.data_dir)
            processes.append(
                ProcessSpec(
                    name=name,
                    component=component.name,
                    kind=component.kind,
                    port=port,
                    argv=(*prefix, *args, *component.args),
                    env=dict(component.env),
                    ready_timeout=component.ready_timeout,
                )
            )
    return tuple(processes)


def _arguments(
    component: Component, port: int, registry: str, gateway: str, data: Path
) -> tuple[str, ...]:
    bind = ("--host", HOST, "--port", str(port))
    if component.kind == "registry":
        # Every instance of a local mesh is on loopback, which the SSRF rules refuse by default.
        db = str(data / "registry.db")
        # A blocking query outlives its client; one second of grace is plenty at the end.
        return ("registry", *bind, "--data", db, "--allow-cidr", "127.0.0.0/8", "--grace", "1")
    if component.kind == "gateway":
        return ("gateway", *bind, "--registry", registry)
    service = ("--service", component.name) if component.module else ()
    if component.kind == "mcp-server":
        return ("mcp-server", component.target, *bind, "--registry", registry, *service)
    return (
        *("agent", component.target, *bind, "--registry", registry, "--gateway", gateway),
        *("--data", str(data / "agents"), "--grace", str(AGENT_GRACE), *service),
    )
