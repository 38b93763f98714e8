"""``meshgate init``: write the built-in mesh out as ``mesh.toml`` for editing."""

from __future__ import annotations

from pathlib import Path

import click

from meshgate.launcher import default_mesh_text

__all__ = ["init"]


@click.command("init")
@click.option(
    "-f",
    "--file",
    "path",
    default="mesh.toml",
    type=click.Path(dir_okay=False, path_type=Path),
    show_default=True,
    help="Where to write the mesh file.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def init(path: Path, force: bool) -> None:
    """Write the default mesh (what `meshgate up` runs) to mesh.toml for editing."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists; `meshgate init --force` overwrites it")
    try:
        path.write_text(default_mesh_text(), "utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    hint = "meshgate up" if path == Path("mesh.toml") else f"meshgate up -f {path}"
    click.echo(f"wrote {path}: edit it, then run `{hint}`")
