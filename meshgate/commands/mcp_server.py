"""``meshgate mcp-server``: run one MCP tool server as a Meshgate process."""

from __future__ import annotations

import click

from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings
from mcp_servers.runtime import build_tool_server_app, load_tool_server
from meshgate.commands.options import (
    bind_options,
    free_port,
    mcp_host_options,
    registry_options,
)
from meshgate.serving import run_app

__all__ = ["mcp_server"]


@click.command("mcp-server")
@click.argument("server", metavar="NAME|module:attr")
@bind_options
@registry_options("Register with this registry (default: do not register).")
@click.option(
    "--public-url",
    metavar="URL",
    help="URL others reach this process at (default http://HOST:PORT).",
)
@click.option("--service", metavar="NAME", help="Service name (default: the server's name).")
@click.option("--instance", metavar="ID", help="Instance name (default SERVICE-xxxx).")
@mcp_host_options
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
        port = free_port(host)
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
