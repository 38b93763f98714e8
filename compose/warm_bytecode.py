"""Compile the bytecode the components import, at image build time (compose/Dockerfile).

The root filesystem is read-only at run time, so Python could not cache what it
compiles then. Importing every module of Meshgate's packages (and the server
parts uvicorn and OpenTelemetry load lazily) writes ``__pycache__`` for exactly
what runs: about half the size of compiling all of site-packages.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

__all__ = ["main"]

PACKAGES = ("registry", "gateway", "agents", "mcp_servers", "meshgate")
LAZY = (
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "aiosqlite",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.sqlite.aiosqlite",
)


def main() -> int:
    failed = []
    names = list(LAZY)
    for package in PACKAGES:
        module = importlib.import_module(package)
        found = pkgutil.walk_packages(module.__path__, package + ".")
        # A __main__ module runs its program when imported.
        names += [m.name for m in found if not m.name.endswith(".__main__")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional extra's module: reported, not fatal
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    print(f"warm_bytecode: imported {len(names) - len(failed)} of {len(names)} modules")
    for line in failed:
        print("  not imported:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
