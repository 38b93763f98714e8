"""Hosting pieces shared by tool servers and agents.

Where a process listens and how others reach it (:class:`HostingConfig`), its
operational routes (``/healthz``, ``/readyz``, ``/metrics``), per-request
metrics by route template (:class:`MetricsMiddleware`), and self-registration
for the process's lifetime (:func:`registered`).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.client import RegistryClient
from registry.models import NAME_PATTERN, CheckSpec, Registration
from registry.selfreg import SelfRegistration

__all__ = [
    "HostingConfig",
    "HttpMetrics",
    "MetricsMiddleware",
    "ops_routes",
    "registered",
]

_NAME = re.compile(NAME_PATTERN)
_WILDCARD_HOSTS = frozenset(("0.0.0.0", "::", "[::]", ""))


def _default_check() -> CheckSpec:
    # Probed every second (a cheap server/discover or card fetch): with the
    # registry's quick re-probes of a failing instance, a killed process
    # leaves the gateway's routes (and /mcp's tools/list) in about 1.3 s.
    return CheckSpec(ttl_seconds=10, interval_seconds=1, deregister_critical_after_seconds=60)


@dataclass(frozen=True)
class HostingConfig:
    """Where a process listens, how others reach it, and where it registers.

    ``instance`` defaults to ``{service}-{4 random hex digits}``; ``public_url``
    (the URL others reach the process at, without a path) defaults to
    ``http://{host}:{port}``. With ``registry_url`` unset the process does not
    register.
    """

    service: str
    instance: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    registry_url: str | None = None
    registry_api_key: str | None = field(default=None, repr=False)
    check: CheckSpec = field(default_factory=_default_check)

    def __post_init__(self) -> None:
        if not _NAME.match(self.service):
            raise ValueError(f"service {self.service!r} is not a DNS label (a-z, 0-9, -)")
        if self.instance is None:
            object.__setattr__(self, "instance", f"{self.service}-{secrets.token_hex(2)}")
        elif not _NAME.match(self.instance):
            raise ValueError(f"instance {self.instance!r} is not a DNS label (a-z, 0-9, -)")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")

    @property
    def instance_id(self) -> str:
        """The instance name (always set after construction)."""
        assert self.instance is not None
        return self.instance

    @property
    def base_url(self) -> str:
        """The URL others reach this process at, without a trailing slash.

        Raises :class:`ValueError` when it cannot be known: no ``public_url``
        and a wildcard host or port 0.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.host in _WILDCARD_HOSTS or self.port == 0:
            raise ValueError(
                f"cannot tell the URL of a process on {self.host or '*'}:{self.port}; "
                "set public_url (or a concrete host and port)"
            )
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}"


# -- operational routes ------------------------------------------------------


def ops_routes(ready: Callable[[], bool], metrics: CollectorRegistry) -> list[Route]:
    """``GET /healthz`` (alive), ``/readyz`` (503 until ``ready()``), ``/metrics`` (Prometheus)."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    async def exposition(request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # Exactly /metrics: Prometheus' ASGI app would redirect to /metrics/.
        Route("/metrics", exposition, methods=["GET"]),
    ]


# -- request metrics ---------------------------------------------------------


class HttpMetrics:
    """HTTP request metrics of one process, in ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "meshgate_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "meshgate_http_request_seconds",
            "Time to answer an HTTP request (long-lived event streams not included).",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30),
        )
        self.in_flight = Gauge(
            "meshgate_http_in_flight",
            "HTTP requests being answered.",
            registry=self.registry,
        )


def _template(scope: Scope) -> str:
    # The router records the route it matched in the (shared) scope: label by
    # its template, never by the raw path, so label values stay few.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class MetricsMiddleware:
    """ASGI middleware counting and timing HTTP requests by route template.

    ``Starlette(middleware=[Middleware(MetricsMiddleware, metrics=m)])``.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = False

        async def watch(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", ()):
                    if key.lower() == b"content-type" and value.startswith(b"text/event-stream"):
                        streaming = True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watch)
        finally:
            self.metrics.in_flight.dec()
            route, method = _template(scope), scope["method"]
            self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
            # A GET event stream lasts as long as the client listens: not a latency.
            if not (streaming and method == "GET"):
                self.metrics.latency.labels(route=route, method=method).observe(
                    time.perf_counter() - started
                )


# -- self-registration -------------------------------------------------------


@asynccontextmanager
async def registered(
    config: HostingConfig,
    registration: Registration,
    *,
    http: httpx.AsyncClient | None = None,
) -> AsyncIterator[SelfRegistration | None]:
    """Keep ``registration`` in the registry while the body runs; deregister on exit.

    Yields ``None`` (and does nothing) when ``config.registry_url`` is unset.
    Entering does not wait for the registry: an outage is ridden out in the
    background, and ``wait_registered()`` on the yielded object reports a refusal.
    ``http`` is used as is (the caller owns it); otherwise one is made and closed.
    """
    if not config.registry_url:
        yield None
        return
    async with AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)
            )
        client = RegistryClient(config.registry_url, http=http, api_key=config.registry_api_key)
        registration_loop = SelfRegistration(
            client, config.service, config.instance_id, registration
        )
        yield await stack.enter_async_context(registration_loop)
