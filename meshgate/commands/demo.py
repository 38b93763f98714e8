"""``meshgate demo``: start the mesh, run the reference scenario, stop; exit 0 iff all passed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import click
import httpx

from meshgate.commands.options import free_port
from meshgate.launcher.spec import default_mesh_text
from meshgate.scenario import Step, StepFailed, StepResult, reference_steps, run_steps

__all__ = ["demo"]

_STOP_WITHIN = 15.0


def _report(result: StepResult) -> None:
    mark = click.style("✓", fg="green") if result.ok else click.style("✗", fg="red")
    timing = click.style(f"{result.seconds:6.2f} s", dim=True)
    click.echo(f"  {mark} {result.title:<58} {timing}")
    click.echo(
        click.style(f"      {result.detail}", dim=result.ok, fg=None if result.ok else "red")
    )


@contextmanager
def _mesh(port: int, workdir: Path, mesh_file: Path | None) -> Iterator[subprocess.Popen[bytes]]:
    """``meshgate up`` in ``workdir`` (its data and log there), interrupted on the way out."""
    if mesh_file is None:
        mesh_file = workdir / "mesh.toml"
        mesh_file.write_text(_scratch_mesh())
    command = [sys.executable, "-m", "meshgate", "--log-json", "up", "--port", str(port)]
    command += ["-f", str(mesh_file.absolute())]
    log = (workdir / "mesh.log").open("wb")
    env = {**os.environ, "NO_COLOR": "1"}
    # Our own interpreter and module, with fixed arguments: no untrusted input.
    process = subprocess.Popen(  # noqa: S603
        command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(_STOP_WITHIN)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _scratch_mesh() -> str:
    """The built-in mesh with the registry on a free port, beside any mesh already up."""
    fixed = 'kind = "registry"\nname = "registry"\nport = 8400\n'
    text = default_mesh_text()
    if fixed not in text:
        raise click.ClickException("the built-in mesh no longer pins the registry at 8400")
    return text.replace(fixed, 'kind = "registry"\nname = "registry"\nport = "auto"\n')


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def _scenario(
    gateway: str, process: subprocess.Popen[bytes], log: Path, ready_within: float
) -> list[StepResult]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:

        async def mesh_up() -> str:
            deadline = time.monotonic() + ready_within
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise StepFailed(f"meshgate up exited {process.returncode}:\n{_tail(log)}")
                try:
                    if (await http.get(gateway + "/readyz")).status_code == 200:
                        return f"gateway ready at {gateway}"
                except httpx.HTTPError:
                    pass
                await anyio.sleep(0.2)  # polling until the deadline
            raise StepFailed(f"the gateway was not ready within {ready_within:.0f} s")

        first = await run_steps([Step("meshgate up starts the mesh", mesh_up)], _report)
        if not first[0].ok:
            return first
        steps = reference_steps(gateway, http, ready_within=ready_within)
        return first + await run_steps(steps, _report)


@click.command("demo")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The gateway's port; 0 picks a free one, so a running mesh is not disturbed.",
)
@click.option(
    "-f",
    "--file",
    "mesh_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The mesh to run (default: the built-in reference mesh).",
)
@click.option("--ready-within", type=float, default=90.0, show_default=True, metavar="SECONDS")
@click.option(
    "--attach",
    metavar="URL",
    help="Run the scenario against the gateway at URL, a mesh already up (e.g. in "
    "containers), instead of starting and stopping one.",
)
def demo(port: int, mesh_file: Path | None, ready_within: float, attach: str | None) -> None:
    """Start the mesh, run the reference scenario end to end, stop the mesh.

    Steps: the mesh starts; the gateway routes to every agent; the planner answers
    a question through the gateway with citations and the computed number; an MCP
    client lists the mesh's tools at /mcp and calls a tool and an agent skill; the
    mesh stops cleanly. Exits 0 only if every step passed.
    """
    if attach is not None:
        gateway = attach.rstrip("/")
        click.echo(f"meshgate demo: the reference scenario against {gateway}")
        started = time.perf_counter()
        _summarize(anyio.run(_attached, gateway, ready_within), started)
        return
    port = port or free_port("127.0.0.1")
    gateway = f"http://127.0.0.1:{port}"
    click.echo(f"meshgate demo: the reference mesh, gateway {gateway}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="meshgate-demo-") as tmp:
        workdir = Path(tmp)
        log = workdir / "mesh.log"
        with _mesh(port, workdir, mesh_file) as process:
            results = anyio.run(_scenario, gateway, process, log, ready_within)
            stopping = time.perf_counter()
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                code: int | None = process.wait(_STOP_WITHIN)
            except subprocess.TimeoutExpired:
                code = None
        seconds = time.perf_counter() - stopping
        ok = code == 0
        detail = f"exit {code} in {seconds:.1f} s" if code is not None else "did not stop in time"
        if not ok:
            detail += "\n" + _tail(log)
        stop = StepResult("Ctrl-C stops the mesh", ok, detail, seconds)
        _report(stop)
        results.append(stop)
    _summarize(results, started)


async def _attached(gateway: str, ready_within: float) -> list[StepResult]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        return await run_steps(reference_steps(gateway, http, ready_within=ready_within), _report)


def _summarize(results: list[StepResult], started: float) -> None:
    """The closing line; exit 1 unless every step passed."""
    passed = sum(r.ok for r in results)
    total = time.perf_counter() - started
    summary = f"{passed}/{len(results)} steps passed in {total:.1f} s"
    click.echo(click.style(summary, fg="green" if passed == len(results) else "red", bold=True))
    if passed != len(results):
        raise SystemExit(1)
