"""Where the operator commands find a running mesh, and how they talk to it."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import httpx

__all__ = ["Endpoints", "MeshUnreachable", "endpoint_options", "fail", "print_json", "table"]

F = TypeVar("F", bound=Callable[..., Any])


class MeshUnreachable(click.ClickException):
    """A component did not answer; exits 1 with what to do."""

    exit_code = 1


@dataclass(frozen=True)
class Endpoints:
    """The gateway and registry of the mesh the command is about."""

    gateway: str
    registry: str
    api_key: str | None = None
    timeout: float = 10.0

    def client(self) -> httpx.AsyncClient:
        """A client for both; the key goes to the gateway only (the registry reads need none)."""
        return httpx.AsyncClient(timeout=self.timeout)

    @property
    def gateway_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def gateway_get(self, http: httpx.AsyncClient, path: str) -> httpx.Response:
        return await _get(http, self.gateway + path, "gateway", self.gateway_headers)

    async def registry_get(self, http: httpx.AsyncClient, path: str) -> httpx.Response:
        return await _get(http, self.registry + path, "registry", {})


async def _get(
    http: httpx.AsyncClient, url: str, what: str, headers: dict[str, str]
) -> httpx.Response:
    try:
        return await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise MeshUnreachable(
            f"the {what} at {url} did not answer ({type(exc).__name__}); is the mesh up "
            f"(`meshgate up`)? Point at it with --{what} URL."
        ) from None


def fail(response: httpx.Response, what: str) -> click.ClickException:
    """The error of a refused request, in the words of its problem details."""
    detail = response.text[:300]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("title") or body.get("error") or detail)
    if response.status_code == 401:
        detail += " (give the gateway's key with --api-key or MESHGATE_GATEWAY_API_KEY)"
    return click.ClickException(f"{what}: HTTP {response.status_code}: {detail}")


def endpoint_options(f: F) -> F:
    """``--gateway``, ``--registry`` and ``--api-key``, turned into one ``endpoints`` argument."""

    # functools.wraps also carries over the options declared below this decorator.
    @functools.wraps(f)
    def build(gateway: str, registry: str, api_key: str | None, **kwargs: Any) -> Any:
        endpoints = Endpoints(gateway.rstrip("/"), registry.rstrip("/"), api_key or None)
        return f(endpoints=endpoints, **kwargs)

    command: Any = build
    for option in (
        click.option(
            "--api-key",
            envvar="MESHGATE_GATEWAY_API_KEY",
            metavar="KEY",
            help="The gateway's key, if it requires one.",
        ),
        click.option(
            "--registry",
            default="http://127.0.0.1:8400",
            envvar="MESHGATE_REGISTRY_URL",
            show_default=True,
            metavar="URL",
        ),
        click.option(
            "--gateway",
            default="http://127.0.0.1:8080",
            envvar="MESHGATE_GATEWAY_URL",
            show_default=True,
            metavar="URL",
        ),
    ):
        command = option(command)
    return command  # type: ignore[no-any-return]


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
