"""The local launcher behind ``meshgate up``: a mesh file, its processes, their supervisor."""

from meshgate.launcher.output import Output
from meshgate.launcher.plan import LaunchOptions, PortInUseError, ProcessSpec, plan_mesh
from meshgate.launcher.ports import HOST, PortAllocator, accepts_connections, port_in_use
from meshgate.launcher.spec import (
    Component,
    MeshSpec,
    MeshSpecError,
    default_mesh_text,
    load_mesh,
    parse_mesh,
)
from meshgate.launcher.supervisor import StartupError, Supervisor, SupervisorPolicy

__all__ = [
    "HOST",
    "Component",
    "LaunchOptions",
    "MeshSpec",
    "MeshSpecError",
    "Output",
    "PortAllocator",
    "PortInUseError",
    "ProcessSpec",
    "StartupError",
    "Supervisor",
    "SupervisorPolicy",
    "accepts_connections",
    "default_mesh_text",
    "load_mesh",
    "parse_mesh",
    "plan_mesh",
    "port_in_use",
]
