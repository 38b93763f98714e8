"""Registry storage backends, chosen by a short name or an import path."""

from __future__ import annotations

import importlib

from registry.backends.base import BackendOptions, Indexed, RegistryBackend, Scope
from registry.backends.memory import MemoryBackend
from registry.backends.sqlite import SqliteBackend

__all__ = [
    "BUILTIN_BACKENDS",
    "BackendOptions",
    "Indexed",
    "MemoryBackend",
    "RegistryBackend",
    "Scope",
    "SqliteBackend",
    "create_backend",
]

#: Short names of the bundled backends and the classes they select; a backend
#: that needs an optional dependency is imported only when chosen.
BUILTIN_BACKENDS: dict[str, str] = {
    "memory": "registry.backends.memory:MemoryBackend",
    "sqlite": "registry.backends.sqlite:SqliteBackend",
    "consul": "registry.backends.consul:ConsulBackend",
}


def create_backend(spec: str, options: BackendOptions | None = None) -> RegistryBackend:
    """Build the backend named by ``spec``: a short name or ``package.module:Class``."""
    path = BUILTIN_BACKENDS.get(spec, spec)
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(
            f"unknown registry backend {spec!r}: use one of {sorted(BUILTIN_BACKENDS)} "
            "or an import path such as 'package.module:Class'"
        )
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load registry backend {spec!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, RegistryBackend)):
        raise ValueError(f"{spec!r} is not a RegistryBackend subclass")
    return cls.from_options(options or BackendOptions())
