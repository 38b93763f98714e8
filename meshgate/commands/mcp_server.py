"""``meshgate mcp-server``: run one MCP tool server as a Meshgate process."""

from __future__ import annotations

import socket

import click

from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings
from mcp_servers.runtime import build_tool_server_app, load_tool_server
from meshgate.serving import run_app

__all__ = ["mcp_server"]


def _free_port(host: str) -> int:
    # The registration must name a real port: pick one now (the kernel's choice).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@click.command("mcp-server")
@click.argument("server", metavar="NAME|module:attr")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    show_default=True,
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--registry",
    "registry_url",
    envvar="MESHGATE_REGISTRY_URL",
    metavar="URL",
    help="Register with this registry (default: do not register).",
)
@click.option(
    "--registry-api-key",
    envvar="MESHGATE_REGISTRY_API_KEY",
    metavar="KEY",
    help="Bearer key for the registry's writes.",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="URL others reach this process at (default http://HOST:PORT).",
)
@click.option("--service", metavar="NAME", help="Service name (default: the server's name).")
@click.option("--instance", metavar="ID", help="Instance name (default SERVICE-xxxx).")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST",
    help="Host header admitted besides localhost, e.g. calc:8000 or calc:* (repeatable).",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Origin admitted besides localhost (repeatable).",
)
def mcp_server(
    server: str,
    host: str,
    port: int,
    registry_url: str | None,
    registry_api_key: str | None,
    public_url: str | None,
    service: str | None,
    instance: str | None,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
) -> None:
    """Serve a tool server: a reference one (knowledge, calc) or module:attr.

    MCP at /mcp (both protocol eras), /healthz, /readyz and /metrics; with
    --registry it registers as kind mcp-server and deregisters on exit.
    """
    try:
        mcp = load_tool_server(server)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME|module:attr") from None
    if port == 0:
        port = _free_port(host)
    try:
        config = HostingConfig(
            service=service or mcp.name,
            instance=instance,
            host=host,
            port=port,
            public_url=public_url,
            registry_url=registry_url,
            registry_api_key=registry_api_key,
        )
        if registry_url:
            config.base_url  # noqa: B018 - fail now, not in the lifespan
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    settings = McpHttpSettings(allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
    app = build_tool_server_app(mcp, config, settings)
    where = config.public_url or f"http://{host}:{port}"
    click.echo(f"meshgate mcp-server {mcp.name} at {where.rstrip('/')}/mcp", err=True)
    run_app(app, host=host, port=port, service=config.service)
