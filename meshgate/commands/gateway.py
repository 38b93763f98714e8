"""``meshgate gateway``: the mesh's one entry point."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import click

from gateway.app import GatewaySettings, create_gateway
from gateway.balancing import BALANCERS
from gateway.mcp import McpSettings
from gateway.mcp.cache import CacheSettings
from gateway.mcp.policy import PolicyError, ToolPolicy, load_tool_policy
from gateway.proxy import ClientSettings
from gateway.security import AuthSettings, CorsSettings, HeaderSettings, key_fingerprint
from gateway.upstreams import OutlierPolicy
from meshgate.commands.options import keys, mcp_host_options
from meshgate.serving import ConnectionLimits, run_app

__all__ = ["gateway"]


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
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="[NAME=]KEY",
    help="Require this key (Bearer or X-API-Key) on every route but /healthz and /readyz "
    "(repeatable; also MESHGATE_GATEWAY_API_KEYS). NAME=KEY names the caller key:NAME "
    "for --tool-policy; an unnamed key's caller is key:<digest>, printed at start.",
)
@click.option(
    "--tool-policy",
    "tool_policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="TOML file of the /mcp tools each caller may see and call: [default] and "
    '[principals."key:NAME"] (or "jwt:SUB", "anonymous") tables, each with `allow` and '
    '`deny` lists of globs on tool names such as "calc__*"; deny wins, a caller\'s own '
    "table replaces [default]; without the file every tool is allowed.",
)
@click.option(
    "--jwt-secret-env",
    metavar="VAR",
    help="Accept HS256 JWTs signed with the secret in this environment variable.",
)
@click.option("--jwks-url", metavar="URL", help="Accept RS256/ES256 JWTs signed by these keys.")
@click.option("--jwt-issuer", metavar="ISS", envvar="MESHGATE_GATEWAY_JWT_ISSUER")
@click.option("--jwt-audience", metavar="AUD", envvar="MESHGATE_GATEWAY_JWT_AUDIENCE")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0.001),
    default=None,
    help="Requests per second per caller on proxied routes (default: no limit).",
)
@click.option("--rate-burst", type=click.FloatRange(min=1), default=20.0, show_default=True)
@click.option(
    "--max-concurrent",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Proxied requests in flight; more wait in a bounded queue, then get 503.",
)
@click.option("--max-queued", type=click.IntRange(0), default=1024, show_default=True)
@click.option(
    "--max-streams",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Proxied GETs open at once (sessions' /mcp streams, subscriptions), apart from "
    "--max-concurrent so idle listeners cannot starve requests; more get 503.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=None,
    help="Open client connections beyond which new requests get 503 (default: no cap "
    "but the process's file limit).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="A request head not complete this long after its first byte: 408, closed (slowloris).",
)
@click.option(
    "--keep-alive-timeout",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    metavar="SECONDS",
    help="An idle client connection is closed after this long.",
)
@click.option(
    "--cache-url",
    metavar="URL",
    envvar="MESHGATE_GATEWAY_CACHE_URL",
    help="Keep /mcp tool results in this Redis (redis://HOST:PORT/DB), shared by gateways; "
    "default: in this process.",
)
@click.option(
    "--cache-ttl",
    type=click.FloatRange(min=0.001),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a result of a read-only, idempotent tool is reused.",
)
@click.option("--no-cache", is_flag=True, help="Call upstream tools every time.")
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Browser origin allowed to call the gateway (repeatable).",
)
@mcp_host_options
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
    api_keys: tuple[str, ...],
    tool_policy_file: Path | None,
    jwt_secret_env: str | None,
    jwks_url: str | None,
    jwt_issuer: str | None,
    jwt_audience: str | None,
    rate_limit: float | None,
    rate_burst: float,
    max_concurrent: int,
    max_queued: int,
    max_streams: int,
    max_connections: int | None,
    header_timeout: float,
    keep_alive_timeout: int,
    cache_url: str | None,
    cache_ttl: float,
    no_cache: bool,
    cors_origins: tuple[str, ...],
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
) -> None:
    """Route A2A and MCP to the mesh's agents and tool servers.

    A2A at /a2a/{agent}/ and /a2a/skills/{skill}/, every tool and agent of the
    mesh at /mcp, a REST facade at /v1/invoke and /v1/stream.
    """
    secret = None
    if jwt_secret_env:
        secret = os.environ.get(jwt_secret_env)
        if not secret:
            raise click.BadParameter(f"${jwt_secret_env} is empty", param_hint="--jwt-secret-env")
    tool_policy: ToolPolicy | None = None
    if tool_policy_file is not None:
        try:
            tool_policy = load_tool_policy(tool_policy_file)
        except PolicyError as exc:
            raise click.BadParameter(str(exc), param_hint="--tool-policy") from None
    plain, named = split_named_keys(keys(api_keys, "MESHGATE_GATEWAY_API_KEYS"))
    try:
        auth = AuthSettings(
            api_keys=plain,
            named_api_keys=named,
            jwt_secret=secret,
            jwks_url=jwks_url,
            issuer=jwt_issuer,
            audience=jwt_audience,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        cache = CacheSettings(enabled=not no_cache, ttl=cache_ttl, url=cache_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cache-url") from None
    if cache.enabled and cache_url and importlib.util.find_spec("redis") is None:
        raise click.UsageError("--cache-url needs the redis extra: pip install 'meshgate[redis]'")
    settings = GatewaySettings(
        registry_url=registry_url.rstrip("/"),
        registry_api_key=registry_api_key,
        public_url=public_url,
        balancer=balancer,
        outliers=OutlierPolicy(consecutive_failures=eject_after),
        client=ClientSettings(connect_timeout=connect_timeout, read_timeout=read_timeout),
        max_body_bytes=max_body,
        auth=auth,
        headers=HeaderSettings(cors=CorsSettings(allow_origins=cors_origins)),
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        max_concurrent=max_concurrent,
        max_queued=max_queued,
        max_streams=max_streams,
        mcp=McpSettings(
            allowed_hosts=allowed_hosts,
            allowed_origins=allowed_origins,
            tool_policy=tool_policy,
            cache=cache,
        ),
    )
    mode = "auth on" if auth.required else "no auth"
    if plain:
        # The ids a --tool-policy file names unnamed keys by (digests, never the keys).
        ids = ", ".join(key_fingerprint(k.encode()) for k in plain)
        click.echo(f"unnamed API keys are callers {ids}", err=True)
    click.echo(
        f"meshgate gateway on http://{host}:{port} (registry {registry_url}, {mode})", err=True
    )
    # run_app freezes the startup heap out of the cyclic GC (serving.freeze_heap).
    limits = ConnectionLimits(header_timeout, keep_alive_timeout, max_connections)
    run_app(
        create_gateway(settings),
        host=host,
        port=port,
        service="meshgate-gateway",
        proxy=True,
        limits=limits,
    )


_NAMED_KEY = re.compile(r"([A-Za-z0-9_.-]{1,64})=([^=].*)", re.DOTALL)


def split_named_keys(
    values: tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Plain keys and ``NAME=KEY`` pairs; ``abc==`` (base64 padding) stays a plain key."""
    plain: list[str] = []
    named: list[tuple[str, str]] = []
    for value in values:
        match = _NAMED_KEY.fullmatch(value)
        if match is None:
            plain.append(value)
        else:
            named.append((match[1], match[2]))
    return tuple(plain), tuple(named)
