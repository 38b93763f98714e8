"""``meshgate up``: the whole mesh on this machine, supervised, until Ctrl-C."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from meshgate.commands.claude_config import desktop_config, meshgate_executable
from meshgate.launcher import (
    LaunchOptions,
    MeshSpecError,
    Output,
    PortInUseError,
    ProcessSpec,
    Supervisor,
    load_mesh,
    plan_mesh,
)

__all__ = ["up"]

#: Read when present and no ``-f`` is given (what ``meshgate init`` writes).
MESH_FILE = Path("mesh.toml")


def _port_advice(error: PortInUseError, gateway: str) -> str:
    lines = [str(error) + "."]
    for name, port in error.taken:
        if name == gateway:
            lines.append(
                f"  {port} ({name}): stop the process listening there, or run "
                f"`meshgate up --port {port + 1}`"
            )
        else:
            lines.append(
                f'  {port} ({name}): stop the process listening there, or set port = "auto" '
                "(or another number) for it in mesh.toml (`meshgate init` writes one)"
            )
    return "\n".join(lines)


def _urls(processes: tuple[ProcessSpec, ...]) -> list[tuple[str, str]]:
    gateway = next(p.url for p in processes if p.kind == "gateway")
    registry = next(p.url for p in processes if p.kind == "registry")
    return [
        ("Gateway", gateway),
        ("MCP", gateway + "/mcp"),
        ("Dashboard", gateway + "/ui"),
        ("Registry", registry),
    ]


@click.command("up")
@click.option(
    "-f",
    "--file",
    "mesh_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The mesh file (default: ./mesh.toml if there is one, else the built-in mesh).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="The gateway's port (default: the mesh file's; 8080 in the built-in mesh).",
)
@click.option(
    "--data",
    "data_dir",
    default=".meshgate",
    type=click.Path(file_okay=False, path_type=Path),
    show_default=True,
    help="Directory of the registry's SQLite file and the agents' task stores.",
)
@click.pass_context
def up(ctx: click.Context, mesh_file: Path | None, port: int | None, data_dir: Path) -> None:
    """Run the mesh: registry, gateway, tool servers and agents, each its own process.

    All on 127.0.0.1: the registry first, then, once it answers /readyz, the
    rest at once; a crashed process is restarted with backoff. Ctrl-C (or
    SIGTERM) stops agents, tool servers, the gateway, then the registry. Log
    lines carry a `name |` prefix on a terminal and are JSON lines otherwise
    (`meshgate --log-json up` forces it); `meshgate --log-level warning up`
    quiets the components.
    """
    if mesh_file is None and MESH_FILE.is_file():
        mesh_file = MESH_FILE
    try:
        spec = load_mesh(mesh_file)
    except MeshSpecError as exc:
        raise click.ClickException(str(exc)) from None
    root = ctx.find_root().params
    log_json = root.get("log_json")
    tty = sys.stdout.isatty()
    json_lines = not tty if log_json is None else bool(log_json)
    data = data_dir.absolute()
    try:
        processes = plan_mesh(
            spec,
            LaunchOptions(
                data_dir=data,
                gateway_port=port,
                log_json=json_lines,
                log_level=str(root.get("log_level") or "info"),
            ),
        )
    except PortInUseError as exc:
        raise click.ClickException(_port_advice(exc, spec.gateway.name)) from None
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot use {data_dir} as the data directory: {exc}") from None
    output = Output(
        sys.stdout, json_lines=json_lines, colour=tty, names=[p.name for p in processes]
    )
    output.event(
        "starting",
        f"starting {len(processes)} processes from {spec.source} (data in {data_dir})",
        source=spec.source,
        processes=len(processes),
    )
    supervisor = Supervisor(processes, output)
    urls = _urls(processes)

    def ready(seconds: float) -> None:
        output.event(
            "all_ready",
            f"all {len(processes)} processes ready in {seconds:.1f} s",
            seconds=round(seconds, 3),
            pids={c.spec.name: c.pid for c in supervisor.children},
        )
        claude = desktop_config(urls[0][1], None, meshgate_executable())
        output.summary(urls, claude)

    ctx.exit(asyncio.run(supervisor.run(ready)))
