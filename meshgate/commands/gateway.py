"""``meshgate gateway``: the mesh's one entry point."""

from __future__ import annotations

import os
import re

import click

from gateway.app import GatewaySettings, create_gateway
from gateway.balancing import BALANCERS
from gateway.proxy import ClientSettings
from gateway.upstreams import OutlierPolicy
from meshgate.serving import run_app

__all__ = ["gateway"]


def _keys(flags: tuple[str, ...], variable: str) -> tuple[str, ...]:
    from_env = re.split(r"[,\s]+", os.environ.get(variable, ""))
    return tuple(k for k in (*flags, *from_env) if k)


@click.command("gateway")
@click.option("--host", default="127.0.0.1", envvar="MESHGATE_GATEWAY_HOST", show_default=True)
@click.option(
    "--port",
    default=8080,
    type=click.IntRange(0, 65535),
    envvar="MESHGATE_GATEWAY_PORT",
    show_default=True,
)
@click.option(
    "--registry",
    "registry_url",
    required=True,
    envvar="MESHGATE_REGISTRY_URL",
    metavar="URL",
    help="The registry to route from.",
)
@click.option("--registry-api-key", envvar="MESHGATE_REGISTRY_API_KEY", metavar="KEY")
@click.option(
    "--public-url",
    metavar="URL",
    envvar="MESHGATE_GATEWAY_PUBLIC_URL",
    help="The URL clients reach the gateway at (cards point there); default: each request's Host.",
)
@click.option(
    "--balancer",
    type=click.Choice(sorted(BALANCERS)),
    default="least_inflight",
    show_default=True,
)
@click.option("--connect-timeout", type=float, default=2.0, show_default=True)
@click.option(
    "--read-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to an upstream's answer, and between streamed chunks.",
)
@click.option(
    "--eject-after",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Consecutive failures that eject an instance.",
)
@click.option("--max-body", type=click.IntRange(1024), default=1_048_576, show_default=True)
def gateway(
    host: str,
    port: int,
    registry_url: str,
    registry_api_key: str | None,
    public_url: str | None,
    balancer: str,
    connect_timeout: float,
    read_timeout: float,
    eject_after: int,
    max_body: int,
) -> None:
    """Route A2A (and MCP) to the mesh's agents and tool servers."""
    settings = GatewaySettings(
        registry_url=registry_url.rstrip("/"),
        registry_api_key=registry_api_key,
        public_url=public_url,
        balancer=balancer,
        outliers=OutlierPolicy(consecutive_failures=eject_after),
        client=ClientSettings(connect_timeout=connect_timeout, read_timeout=read_timeout),
        max_body_bytes=max_body,
    )
    click.echo(f"meshgate gateway on http://{host}:{port} (registry {registry_url})", err=True)
    run_app(create_gateway(settings), host=host, port=port, service="meshgate-gateway")
