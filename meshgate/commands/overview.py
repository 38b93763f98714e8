"""``meshgate status``, ``meshgate agents`` and ``meshgate tools``: a running mesh at a glance."""

from __future__ import annotations

from typing import Any

import anyio
import click
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from meshgate.commands.endpoints import (
    Endpoints,
    MeshUnreachable,
    endpoint_options,
    fail,
    print_json,
    table,
)

__all__ = ["agents", "status", "tools"]

_HEALTH_COLOURS = {"passing": "green", "warning": "yellow", "critical": "red"}


async def _component(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = await http.get(url + "/readyz", headers=headers)
    except httpx.HTTPError as exc:
        return {"url": url, "state": "unreachable", "detail": type(exc).__name__}
    try:
        body = response.json()
    except ValueError:
        body = {}
    state = "ready" if response.status_code == 200 else f"not ready ({response.status_code})"
    return {"url": url, "state": state, **(body if isinstance(body, dict) else {})}


async def _status(endpoints: Endpoints) -> dict[str, Any]:
    async with endpoints.client() as http:
        registry = await _component(http, endpoints.registry, {})
        gateway = await _component(http, endpoints.gateway, endpoints.gateway_headers)
        instances: list[dict[str, Any]] = []
        if registry["state"] == "ready":
            response = await endpoints.registry_get(http, "/v1/instances")
            if response.status_code != 200:
                raise fail(response, "registry")
            instances = [_instance(i) for i in response.json()]
    return {"registry": registry, "gateway": gateway, "instances": instances}


def _instance(record: dict[str, Any]) -> dict[str, Any]:
    card = record.get("card") or {}
    skills = [s.get("id") for s in card.get("skills") or [] if isinstance(s, dict)]
    return {
        "service": record.get("service"),
        "instance": record.get("id"),
        "kind": record.get("kind"),
        "health": record.get("health"),
        "url": record.get("url"),
        "skills": skills,
        "tools": [t.get("name") for t in record.get("tools") or [] if isinstance(t, dict)],
    }


@click.command("status")
@endpoint_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def status(endpoints: Endpoints, as_json: bool) -> None:
    """The registry, the gateway and every registered instance with its health.

    Exits 1 unless both the registry and the gateway are ready.
    """
    report = anyio.run(_status, endpoints)
    ready = all(report[c]["state"] == "ready" for c in ("registry", "gateway"))
    if as_json:
        print_json(report)
    else:
        for name in ("registry", "gateway"):
            part = report[name]
            style = "green" if part["state"] == "ready" else "red"
            state = click.style(part["state"], fg=style)
            stale = " (stale route table)" if part.get("stale") else ""
            click.echo(f"{name:<9} {part['url']}  {state}{stale}")
        rows = [
            (
                str(i["service"]),
                str(i["instance"]),
                str(i["kind"]),
                str(i["health"]),
                str(i["url"]),
            )
            for i in sorted(report["instances"], key=lambda i: (i["service"], i["instance"]))
        ]
        if rows:
            click.echo()
            text = table(rows, ("SERVICE", "INSTANCE", "KIND", "HEALTH", "URL"))
            for health, colour in _HEALTH_COLOURS.items():
                text = text.replace(f"  {health}  ", f"  {click.style(health, fg=colour)}  ")
            click.echo(text)
        elif report["registry"]["state"] == "ready":
            click.echo("\nno instance is registered")
    if not ready:
        raise SystemExit(1)


async def _agents(endpoints: Endpoints, skill: str | None) -> list[dict[str, Any]]:
    async with endpoints.client() as http:
        path = "/v1/agents" + (f"?skill={skill}" if skill else "")
        response = await endpoints.gateway_get(http, path)
    if response.status_code != 200:
        raise fail(response, "gateway")
    found: list[dict[str, Any]] = response.json()
    return found


@click.command("agents")
@endpoint_options
@click.option("--skill", metavar="ID", help="Only agents offering this skill.")
@click.option("--json", "as_json", is_flag=True, help="Print the gateway's JSON (cards included).")
def agents(endpoints: Endpoints, skill: str | None, as_json: bool) -> None:
    """The agents the gateway routes to, with their skills."""
    found = anyio.run(_agents, endpoints, skill)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no routable agent" + (f" offers {skill!r}" if skill else ""))
        return
    rows = [
        (
            a["name"],
            f"{a['routable']}/{a['instances']}",
            ", ".join(a["skills"]),
            str((a.get("card") or {}).get("description", ""))[:60],
        )
        for a in found
    ]
    click.echo(table(rows, ("AGENT", "UP", "SKILLS", "DESCRIPTION")))


async def _tools(endpoints: Endpoints) -> list[dict[str, Any]]:
    http = create_mcp_http_client(headers=endpoints.gateway_headers or None)
    transport = streamable_http_client(endpoints.gateway + "/mcp", http_client=http)
    try:
        async with http, Client(transport, mode="2026-07-28", cache=None) as client:
            listed = await client.list_tools()
    except MCPError as exc:
        raise click.ClickException(f"gateway /mcp: {exc}") from None
    except Exception as exc:  # the SDK's transport errors have no common base
        raise MeshUnreachable(
            f"the gateway's /mcp at {endpoints.gateway}/mcp did not answer "
            f"({_cause(exc)}); is the mesh up (`meshgate up`)?"
        ) from None
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]


def _cause(exc: BaseException) -> str:
    """The innermost error of task-group wrappers, briefly."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:200]


@click.command("tools")
@endpoint_options
@click.option("--json", "as_json", is_flag=True, help="Print the tools with their schemas.")
def tools(endpoints: Endpoints, as_json: bool) -> None:
    """Every tool of the mesh as an MCP client of the gateway sees it."""
    found = anyio.run(_tools, endpoints)
    if as_json:
        print_json(found)
        return
    rows = []
    for tool in found:
        hints = tool.get("annotations") or {}
        flags = "read-only" if hints.get("readOnlyHint") else ""
        description = " ".join(str(tool.get("description", "")).split())
        rows.append((tool["name"], flags, description[:70]))
    click.echo(table(rows, ("TOOL", "HINTS", "DESCRIPTION")))
    click.echo(f"\n{len(found)} tools")
