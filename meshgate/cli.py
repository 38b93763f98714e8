"""The ``meshgate`` command. Only this layer reads the environment."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from meshgate import __version__
from meshgate.commands.agent import agent
from meshgate.commands.call import call
from meshgate.commands.claude_config import claude_config
from meshgate.commands.demo import demo
from meshgate.commands.gateway import gateway
from meshgate.commands.init import init
from meshgate.commands.mcp_server import mcp_server
from meshgate.commands.mcp_stdio import mcp_stdio
from meshgate.commands.options import keys
from meshgate.commands.overview import agents, status, tools
from meshgate.commands.up import up
from meshgate.lifeline import PARENT_ENV, follow_parent
from meshgate.logs import configure_logging
from meshgate.serving import run_app
from registry.backends import BackendOptions, create_backend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meshgate")
@click.option(
    "--log-level",
    default="info",
    envvar="MESHGATE_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    show_default=True,
)
@click.option("--log-json/--log-human", default=None, help="Default: JSON unless on a terminal.")
def main(log_level: str, log_json: bool | None) -> None:
    """Meshgate: an MCP/A2A agent mesh."""
    configure_logging(log_level, json_lines=log_json)
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit():
        follow_parent(int(parent))


def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-cidr") from None


@main.command()
@click.option("--host", default="127.0.0.1", envvar="MESHGATE_REGISTRY_HOST", show_default=True)
@click.option(
    "--port",
    default=8400,
    type=click.IntRange(0, 65535),
    envvar="MESHGATE_REGISTRY_PORT",
    show_default=True,
)
@click.option(
    "--backend",
    default="sqlite",
    envvar="MESHGATE_REGISTRY_BACKEND",
    show_default=True,
    help="sqlite, memory, consul, or an import path such as package.module:Class.",
)
@click.option(
    "--consul-addr",
    default="http://127.0.0.1:8500",
    envvar="CONSUL_HTTP_ADDR",
    show_default=True,
    help="Consul HTTP API of the consul backend (token from CONSUL_HTTP_TOKEN).",
)
@click.option("--consul-datacenter", default=None, help="Consul datacenter (default: the agent's).")
@click.option(
    "--consul-consistency",
    default="default",
    type=click.Choice(["default", "consistent", "stale"]),
    show_default=True,
    help="Consistency mode of Consul reads.",
)
@click.option(
    "--data",
    default=".meshgate/registry.db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MESHGATE_REGISTRY_DATA",
    show_default=True,
    help="SQLite file of the sqlite backend.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Admit private, loopback and link-local instance URLs (never metadata addresses).",
)
@click.option(
    "--allow-cidr",
    multiple=True,
    metavar="CIDR",
    help="Admit instance URLs in this range even if private (repeatable).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY",
    help="Require this key for writes (repeatable; also MESHGATE_REGISTRY_API_KEYS).",
)
@click.option(
    "--grace",
    default=5,
    type=click.IntRange(0, 3600),
    show_default=True,
    help="Seconds open requests (blocking queries too) get on shutdown before they are cancelled.",
)
def registry(
    host: str,
    port: int,
    backend: str,
    consul_addr: str,
    consul_datacenter: str | None,
    consul_consistency: str,
    data: Path,
    allow_private: bool,
    allow_cidr: tuple[str, ...],
    api_keys: tuple[str, ...],
    grace: int,
) -> None:
    """Run the registry service."""
    backend_settings: dict[str, str] = {}
    if backend == "consul":
        backend_settings = {"addr": consul_addr, "consistency": consul_consistency}
        if consul_datacenter:
            backend_settings["datacenter"] = consul_datacenter
        if token := os.environ.get("CONSUL_HTTP_TOKEN"):
            backend_settings["token"] = token  # never echoed or logged
    try:
        store = create_backend(backend, BackendOptions(data_path=data, settings=backend_settings))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--backend") from None
    settings = RegistrySettings(
        url_policy=UrlPolicy(allow_private=allow_private, allowed_networks=_networks(allow_cidr)),
        api_keys=keys(api_keys, "MESHGATE_REGISTRY_API_KEYS"),
    )
    click.echo(f"meshgate registry on http://{host}:{port} ({store.name} backend)", err=True)
    run_app(
        create_app(store, settings),
        host=host,
        port=port,
        grace_seconds=grace,
        service="meshgate-registry",
    )


main.add_command(agent)
main.add_command(gateway)
main.add_command(mcp_server)
main.add_command(mcp_stdio)
main.add_command(claude_config)
main.add_command(up)
main.add_command(init)
main.add_command(status)
main.add_command(agents)
main.add_command(tools)
main.add_command(call)
main.add_command(demo)
