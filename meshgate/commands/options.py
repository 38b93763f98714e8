"""Flags and helpers the process commands share."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["bind_options", "free_port", "keys", "mcp_host_options", "registry_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _apply(f: F, *options: Callable[[F], F]) -> F:
    for option in reversed(options):
        f = option(f)
    return f


def bind_options(f: F) -> F:
    """``--host`` and ``--port`` (0 picks a free port)."""
    return _apply(
        f,
        click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
        click.option(
            "--port",
            default=0,
            type=click.IntRange(0, 65535),
            show_default=True,
            help="Port to bind; 0 picks a free one.",
        ),
    )


def registry_options(help_text: str) -> Callable[[F], F]:
    """``--registry`` (``MESHGATE_REGISTRY_URL``) and ``--registry-api-key``."""

    def decorate(f: F) -> F:
        return _apply(
            f,
            click.option(
                "--registry",
                "registry_url",
                envvar="MESHGATE_REGISTRY_URL",
                metavar="URL",
                help=help_text,
            ),
            click.option(
                "--registry-api-key",
                envvar="MESHGATE_REGISTRY_API_KEY",
                metavar="KEY",
                help="Bearer key for the registry's writes.",
            ),
        )

    return decorate


def mcp_host_options(f: F) -> F:
    """``--allowed-host`` and ``--allowed-origin`` for the DNS-rebinding check of ``/mcp``."""
    return _apply(
        f,
        click.option(
            "--allowed-host",
            "allowed_hosts",
            multiple=True,
            metavar="HOST",
            help="Host header /mcp admits besides localhost, e.g. calc:8000 or calc:* "
            "(repeatable).",
        ),
        click.option(
            "--allowed-origin",
            "allowed_origins",
            multiple=True,
            metavar="ORIGIN",
            help="Origin /mcp admits besides localhost (repeatable).",
        ),
    )


def free_port(host: str) -> int:
    """A port the kernel picks now: a registration must name a real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def keys(flags: tuple[str, ...], variable: str) -> tuple[str, ...]:
    """API keys from repeated flags and a comma- or space-separated variable."""
    from_env = re.split(r"[,\s]+", os.environ.get(variable, ""))
    return tuple(k for k in (*flags, *from_env) if k)
