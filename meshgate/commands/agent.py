"""``meshgate agent``: run one agent as a Meshgate process."""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import click
import httpx
from starlette.applications import Starlette

from agents.llm import ChatClient, LlmSettings
from agents.runtime import AgentConfig, build_agent_app
from agents.sdk import Agent, Delegator, ToolCaller
from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings
from meshgate.commands.options import (
    bind_options,
    free_port,
    mcp_host_options,
    registry_options,
)
from meshgate.logs import configure_logging
from meshgate.serving import run_app
from registry.client import RegistryClient

__all__ = [
    "LLM_API_KEY_ENV",
    "REFERENCE_AGENTS",
    "agent",
    "default_clients",
    "default_instance",
    "llm_settings",
    "load_agent",
]

#: Reference agents: ``NAME`` stands for ``agents.NAME:agent``.
REFERENCE_AGENTS = ("researcher", "summarizer", "calculator", "planner")
#: The one place the LLM endpoint's key is read from (never a flag: flags show in ``ps``).
LLM_API_KEY_ENV = "MESHGATE_LLM_API_KEY"


def load_agent(spec: str) -> Agent:
    """The agent ``spec`` names: ``NAME`` (``agents.NAME:agent``) or ``module:attr``.

    ``attr`` is an :class:`Agent` or a zero-argument factory of one. Raises
    :class:`ValueError` with a message fit for a command line.
    """
    target = spec if ":" in spec else f"agents.{spec}:agent"
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{spec!r} is neither an agent name nor module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        known = ", ".join(REFERENCE_AGENTS)
        hint = "" if ":" in spec else f" (reference agents: {known})"
        raise ValueError(f"cannot import {module_name!r}: {exc}{hint}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, Agent) and callable(obj):
        obj = obj()
    if not isinstance(obj, Agent):
        raise ValueError(f"{target!r} is not an Agent nor a factory returning one")
    return obj


def default_instance(service: str, port: int) -> str:
    """``{service}-{6 hex}`` from this host's name and the port: the same on every restart.

    A stable name keeps the task file (``{instance}.db``) and the registry
    record across restarts; replicas on other hosts still get distinct names.
    """
    digest = hashlib.sha256(f"{socket.gethostname()}:{port}".encode()).hexdigest()
    return f"{service[:56]}-{digest[:6]}"


def default_clients(
    config: AgentConfig, http: httpx.AsyncClient
) -> tuple[ToolCaller | None, Delegator | None]:
    """The ToolCaller and Delegator the agent's skills get (``ctx.tools``, ``ctx.peers``).

    Both find their targets in the registry and go through the gateway when
    one is configured; without a registry there are none (a skill that uses
    them fails with "no registry configured").
    """
    hosting = config.hosting
    if not hosting.registry_url:
        return None, None
    try:  # imported here: the runtime works without them
        from agents.delegation import PeerClient
        from agents.tools import MeshTools
    except ImportError:
        return None, None
    registry = RegistryClient(hosting.registry_url, http=http, api_key=hosting.registry_api_key)
    tools = MeshTools(registry, http=http, gateway_url=config.gateway_url)
    peers = PeerClient(registry, http, gateway_url=config.gateway_url, self_name=hosting.service)
    return tools, peers


def llm_settings(
    base_url: str | None, model: str | None, api_key: str | None
) -> LlmSettings | None:
    """The LLM endpoint the options name, or ``None`` when no base URL is set.

    A base URL needs a model and a model a base URL; an empty key is no key.
    Raises :class:`ValueError` with a message fit for a command line.
    """
    if not base_url:
        if model:
            raise ValueError("--llm-model needs --llm-base-url (MESHGATE_LLM_BASE_URL)")
        return None
    if not model:
        raise ValueError("--llm-base-url needs --llm-model (MESHGATE_LLM_MODEL)")
    return LlmSettings(base_url=base_url, model=model, api_key=api_key or None)


def _closing(app: Starlette, http: httpx.AsyncClient) -> Starlette:
    """Close ``http`` after the app's own lifespan (it outlives the drain)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with inner(app):
                yield
        finally:
            await http.aclose()

    app.router.lifespan_context = lifespan
    return app


@click.command("agent")
@click.argument("spec", metavar="NAME|module:attr")
@bind_options
@registry_options("Register with this registry, and find peers and tools in it.")
@click.option(
    "--gateway",
    "gateway_url",
    envvar="MESHGATE_GATEWAY_URL",
    metavar="URL",
    help="Send delegations and tool calls through this gateway.",
)
@click.option(
    "--public-url", metavar="URL", help="URL others reach the agent at (default http://HOST:PORT)."
)
@click.option("--service", metavar="NAME", help="Service name (default: the agent's name).")
@click.option(
    "--instance", metavar="ID", help="Instance name (default SERVICE-xxxxxx, stable per host+port)."
)
@click.option(
    "--data",
    "data_dir",
    default=".meshgate/agents",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MESHGATE_AGENT_DATA",
    show_default=True,
    help="Directory of the task store (INSTANCE.db).",
)
@click.option(
    "--task-store",
    envvar="MESHGATE_AGENT_TASK_STORE",
    metavar="URL",
    help="'memory', or an async SQLAlchemy URL (postgresql+asyncpg://...) instead of SQLite.",
)
@click.option(
    "--grace",
    default=10.0,
    type=click.FloatRange(0, 3600),
    show_default=True,
    help="Seconds in-flight tasks get on shutdown before they are cancelled.",
)
@click.option(
    "--max-body",
    default=1_048_576,
    type=click.IntRange(1_024),
    show_default=True,
    help="Largest request body accepted, in bytes.",
)
@click.option(
    "--llm-base-url",
    envvar="MESHGATE_LLM_BASE_URL",
    metavar="URL",
    help=(
        "An OpenAI-compatible API (e.g. http://127.0.0.1:11434/v1) the planner and summarizer "
        f"may use; its key comes from {LLM_API_KEY_ENV} only. Unset: no LLM."
    ),
)
@click.option(
    "--llm-model",
    envvar="MESHGATE_LLM_MODEL",
    metavar="NAME",
    help="The model to ask at --llm-base-url.",
)
@mcp_host_options
def agent(
    spec: str,
    host: str,
    port: int,
    registry_url: str | None,
    registry_api_key: str | None,
    gateway_url: str | None,
    public_url: str | None,
    service: str | None,
    instance: str | None,
    data_dir: Path,
    task_store: str | None,
    grace: float,
    max_body: int,
    llm_base_url: str | None,
    llm_model: str | None,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
) -> None:
    """Serve an agent: a reference one (researcher, summarizer, calculator, planner) or
    module:attr.

    A2A 1.0 JSON-RPC at / and HTTP+JSON, the card at
    /.well-known/agent-card.json, its tools at /mcp, /healthz, /readyz and
    /metrics; tasks in a SQLite file under --data. With --registry it
    registers as kind a2a-agent and deregisters after a graceful shutdown.
    With --llm-base-url and --llm-model its skills may ask that model; without,
    they work as ever.
    """
    if not logging.getLogger().handlers:  # run on its own, not under `meshgate`
        configure_logging()
    try:
        loaded = load_agent(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME|module:attr") from None
    if port == 0:
        port = free_port(host)
    name = service or loaded.name
    try:
        hosting = HostingConfig(
            service=name,
            instance=instance or default_instance(name, port),
            host=host,
            port=port,
            public_url=public_url,
            registry_url=registry_url,
            registry_api_key=registry_api_key,
        )
        hosting.base_url  # noqa: B018 - the card needs it: fail now, not in the lifespan
        config = AgentConfig(
            hosting=hosting,
            data_dir=data_dir,
            task_store=task_store,
            gateway_url=gateway_url,
            grace_seconds=grace,
            mcp=McpHttpSettings(allowed_hosts=allowed_hosts, allowed_origins=allowed_origins),
            max_body_bytes=max_body,
        )
        llm = llm_settings(llm_base_url, llm_model, os.environ.get(LLM_API_KEY_ENV))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False)
    tools, peers = default_clients(config, http)
    chat = ChatClient(llm, http) if llm is not None else None
    app = _closing(
        build_agent_app(loaded, config, http=http, tools=tools, peers=peers, llm=chat), http
    )
    click.echo(
        f"meshgate agent {loaded.name} ({hosting.instance_id}) at {hosting.base_url}", err=True
    )
    if llm is not None:
        keyed = "with" if llm.api_key else "without"
        click.echo(f"  LLM: {llm.model} at {llm.base_url} ({keyed} an API key)", err=True)
    # uvicorn's own grace (open requests and streams) comes first, then the drain.
    run_app(app, host=host, port=port, grace_seconds=math.ceil(grace) + 1, service=hosting.service)
