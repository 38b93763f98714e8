"""``meshgate claude-config``: the ``claude_desktop_config.json`` entry for this mesh."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["CONFIG_LOCATIONS", "claude_config", "desktop_config"]

#: Where Claude Desktop reads its configuration.
CONFIG_LOCATIONS = {
    "macOS": "~/Library/Application Support/Claude/claude_desktop_config.json",
    "Windows": r"%APPDATA%\Claude\claude_desktop_config.json",
    "Linux": "~/.config/Claude/claude_desktop_config.json",
}

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def meshgate_executable() -> str:
    """The absolute path of this environment's ``meshgate`` script."""
    scripts = Path(sys.executable).parent
    for name in ("meshgate", "meshgate.exe"):
        candidate = scripts / name
        if candidate.exists():
            return str(candidate.absolute())
    found = shutil.which("meshgate")
    return str(Path(found).absolute()) if found else str(scripts.absolute() / "meshgate")


def desktop_config(gateway: str, api_key_env: str | None, command: str) -> dict[str, Any]:
    """The snippet. A key is never written in: the bridge reads it from the environment
    (``MESHGATE_GATEWAY_API_KEY``), which the entry fills from ``api_key_env``."""
    server: dict[str, Any] = {"command": command, "args": ["mcp-stdio", "--gateway", gateway]}
    if api_key_env:
        # Claude Desktop passes env values verbatim; ${VAR} is expanded by clients that
        # support it. Either way the file holds a reference, never the key.
        server["env"] = {"MESHGATE_GATEWAY_API_KEY": f"${{{api_key_env}}}"}
    return {"mcpServers": {"meshgate": server}}


@click.command("claude-config")
@click.option(
    "--gateway",
    "gateway_url",
    default="http://127.0.0.1:8080",
    envvar="MESHGATE_GATEWAY_URL",
    show_default=True,
    metavar="URL",
    help="The gateway's base URL as this machine reaches it.",
)
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="Name of the environment variable holding the gateway's key (the key itself "
    "is never printed).",
)
def claude_config(gateway_url: str, api_key_env: str | None) -> None:
    """Print the claude_desktop_config.json entry that runs `meshgate mcp-stdio`.

    The JSON goes to stdout; where the file lives goes to stderr.
    """
    if not gateway_url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--gateway")
    if api_key_env is not None and not _ENV_NAME.fullmatch(api_key_env):
        raise click.BadParameter("must be an environment variable name", param_hint="--api-key-env")
    config = desktop_config(gateway_url.rstrip("/"), api_key_env, meshgate_executable())
    click.echo(json.dumps(config, indent=2))
    click.echo("Merge into claude_desktop_config.json, then restart Claude Desktop:", err=True)
    for system, path in CONFIG_LOCATIONS.items():
        click.echo(f"  {system + ':':9} {path}", err=True)
