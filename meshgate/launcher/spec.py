"""``mesh.toml``: the components ``meshgate up`` runs, read and checked."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "Component",
    "MeshSpec",
    "MeshSpecError",
    "default_mesh_text",
    "load_mesh",
    "parse_mesh",
]

#: Component kinds, in stop order last first (agents stop first, the registry last).
KINDS = ("registry", "gateway", "mcp-server", "agent")
_REPLICATED = ("mcp-server", "agent")
_KEYS = ("kind", "name", "module", "replicas", "port", "env", "args", "ready_timeout")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
MAX_REPLICAS = 32


class MeshSpecError(ValueError):
    """A mesh file that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class Component:
    """One ``[[component]]``: a process kind, run ``replicas`` times."""

    kind: str
    name: str
    module: str | None = None
    replicas: int = 1
    #: ``None`` is ``"auto"``: a free port chosen at start.
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    ready_timeout: float = 30.0

    @property
    def target(self) -> str:
        """What ``meshgate mcp-server``/``agent`` is told to load."""
        return self.module or self.name


@dataclass(frozen=True)
class MeshSpec:
    """A whole mesh: exactly one registry and one gateway, any tool servers and agents."""

    components: tuple[Component, ...]
    source: str = "mesh.toml"

    def of_kind(self, kind: str) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.kind == kind)

    @property
    def gateway(self) -> Component:
        return self.of_kind("gateway")[0]


def default_mesh_text() -> str:
    """The built-in mesh file (what ``meshgate init`` writes out)."""
    return resources.files(__package__).joinpath("default_mesh.toml").read_text("utf-8")


def load_mesh(path: Path | None) -> MeshSpec:
    """The mesh in ``path``, or the built-in one when ``path`` is ``None``."""
    if path is None:
        return parse_mesh(default_mesh_text(), "built-in mesh")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MeshSpecError(f"{path}: cannot read: {exc}") from None
    return parse_mesh(text, str(path))


def parse_mesh(text: str, source: str = "mesh.toml") -> MeshSpec:
    """Parse and check a mesh file; :class:`MeshSpecError` names the offending key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MeshSpecError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"component"})
    if unknown:
        raise MeshSpecError(
            f"{source}: unknown top-level key {unknown[0]!r} (expected [[component]] tables)"
        )
    tables = data.get("component")
    if not isinstance(tables, list) or not tables:
        raise MeshSpecError(f"{source}: 'component': expected one or more [[component]] tables")
    components = tuple(
        _component(table, f"{source}: component[{i}]") for i, table in enumerate(tables, 1)
    )
    _check_mesh(components, source)
    return MeshSpec(components, source)


def _component(table: Any, where: str) -> Component:
    if not isinstance(table, dict):
        raise MeshSpecError(f"{where}: expected a table")
    for key in table:
        if key not in _KEYS:
            raise MeshSpecError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
    kind = table.get("kind")
    if kind not in KINDS:
        raise MeshSpecError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    where = f"{where} ({kind})"
    replicated = kind in _REPLICATED
    name = table.get("name", None if replicated else kind)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MeshSpecError(
            f"{where}.name: must be 1-48 letters, digits, '_', '.' or '-', got {name!r}"
        )
    module = table.get("module")
    if module is not None and (not replicated or not isinstance(module, str)):
        raise MeshSpecError(f"{where}.module: a 'package.module:attr' string, for {_kinds()} only")
    if module is not None and not _MODULE.fullmatch(module):
        raise MeshSpecError(f"{where}.module: must look like 'package.module:attr', got {module!r}")
    replicas = table.get("replicas", 1)
    if type(replicas) is not int or not 1 <= replicas <= MAX_REPLICAS:
        raise MeshSpecError(
            f"{where}.replicas: must be an integer from 1 to {MAX_REPLICAS}, got {replicas!r}"
        )
    if replicas > 1 and not replicated:
        raise MeshSpecError(f"{where}.replicas: only {_kinds()} may have more than one")
    port = _port(table.get("port", "auto"), f"{where}.port")
    if port is not None and replicas > 1:
        raise MeshSpecError(f'{where}.port: must be "auto" with replicas = {replicas}')
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and _ENV_NAME.fullmatch(k) and isinstance(v, str) for k, v in env.items()
    ):
        raise MeshSpecError(f'{where}.env: must be a table of NAME = "value" strings')
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise MeshSpecError(f"{where}.args: must be a list of strings")
    timeout = table.get("ready_timeout", 30.0)
    if type(timeout) not in (int, float) or not 0 < timeout <= 600:
        raise MeshSpecError(f"{where}.ready_timeout: must be seconds in (0, 600], got {timeout!r}")
    return Component(kind, name, module, replicas, port, dict(env), tuple(args), float(timeout))


def _port(value: Any, where: str) -> int | None:
    if value == "auto":
        return None
    if type(value) is not int or not 1 <= value <= 65535:
        raise MeshSpecError(f'{where}: must be a port number (1-65535) or "auto", got {value!r}')
    return int(value)


def _kinds() -> str:
    return " and ".join(_REPLICATED)


def _check_mesh(components: tuple[Component, ...], source: str) -> None:
    for kind in ("registry", "gateway"):
        count = sum(c.kind == kind for c in components)
        if count != 1:
            raise MeshSpecError(
                f"{source}: needs exactly one component of kind {kind!r}, has {count}"
            )
    seen: set[str] = set()
    ports: dict[int, str] = {}
    for c in components:
        if c.name in seen:
            raise MeshSpecError(f"{source}: two components are named {c.name!r}")
        seen.add(c.name)
        if c.port is not None:
            if c.port in ports:
                raise MeshSpecError(
                    f"{source}: {ports[c.port]!r} and {c.name!r} both have port {c.port}"
                )
            ports[c.port] = c.name
