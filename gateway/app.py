"""The gateway application: one ASGI app, one lifespan owning every background task.

``/a2a/...`` is served by a raw-ASGI fast path (no Request objects, no router
walk); everything else — the REST facade, ``/v1/agents``, the operational
routes and the docs — by a Starlette app.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.a2a import A2AGateway, A2ASettings
from gateway.balancing import create_balancer
from gateway.errors import (
    BadRequest,
    GatewayError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    handle_exception,
    is_jsonrpc_route,
    send_error,
)
from gateway.forwarding import Forwarder
from gateway.limits import AdmissionQueue, RateLimiter, RetryBudget
from gateway.mcp import McpSettings, mount_mcp
from gateway.metrics import GatewayMetrics
from gateway.openapi import openapi_document
from gateway.proxy import ClientSettings, UpstreamClient
from gateway.rest import invoke, list_agents, stream
from gateway.router import Router
from gateway.security import (
    Authenticator,
    AuthMiddleware,
    AuthSettings,
    BodyLimitMiddleware,
    HeaderSettings,
    SecurityHeadersMiddleware,
    normalize_path,
)
from gateway.security.middleware import authenticate, strip_credentials
from gateway.security.redaction import redact_session_ids
from gateway.table import RouteTable
from gateway.ui import SHELL_PATHS, MeshView, ui_routes
from gateway.upstreams import OutlierPolicy, Upstreams
from gateway.watcher import RouteWatcher
from registry.client import RegistryClient
from registry.server.openapi import DOCS_CSS, docs_page
from registry.ssrf import UrlPolicy, is_refused_address

__all__ = ["Gateway", "GatewaySettings", "create_gateway"]


@dataclass(frozen=True)
class GatewaySettings:
    """How a gateway behaves; the CLI builds this from flags and the environment."""

    registry_url: str
    registry_api_key: str | None = None
    #: The gateway's URL as clients reach it (cards point there); default: each request's Host.
    public_url: str | None = None
    balancer: str = "least_inflight"
    outliers: OutlierPolicy = field(default_factory=OutlierPolicy)
    client: ClientSettings = field(default_factory=ClientSettings)
    max_body_bytes: int = 1_048_576
    #: At most this share of extra attempts (retries) over requests.
    retry_ratio: float = 0.2
    #: Wait of the registry watch's blocking queries.
    watch_wait: float = 30.0
    mcp: McpSettings = field(default_factory=McpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    headers: HeaderSettings = field(default_factory=HeaderSettings)
    #: Requests per second per principal (anonymous callers: per address); None: no limit.
    rate_limit: float | None = None
    rate_burst: float = 20.0
    #: Proxied requests in flight at once; beyond it a bounded queue, then 503.
    max_concurrent: int = 1024
    max_queued: int = 1024
    max_queue_wait: float = 5.0
    #: Proxied GETs in flight: a session's ``GET /mcp`` stream (idle for hours), a
    #: task subscription, a card. They take no admission slot, so idle listeners
    #: cannot starve requests; beyond this many, a new one gets 503 at once.
    max_streams: int = 10_000
    #: Addresses never dispatched to, whatever the registry lists (the registry
    #: checks at its door; a store written past it, such as Consul, may not be).
    #: The default refuses metadata, unspecified, multicast and reserved ones.
    url_policy: UrlPolicy = field(default_factory=lambda: UrlPolicy(allow_private=True))


class Gateway:
    """The parts of a running gateway, shared by the routes (``app.state.gateway``)."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        http: httpx.AsyncClient | None = None,
        upstream: UpstreamClient | None = None,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=settings.watch_wait + 10, trust_env=False)
        self.registry = RegistryClient(
            settings.registry_url, http=self.http, api_key=settings.registry_api_key
        )
        self.metrics = GatewayMetrics()
        self.upstreams = Upstreams(settings.outliers)
        self.upstreams.on_eject = lambda key, _: self.metrics.ejections(key[0]).inc()
        self.watcher = RouteWatcher(
            self.registry,
            wait=settings.watch_wait,
            on_table=self._on_table,
            url_policy=settings.url_policy,
        )
        self.metrics.follow(lambda: self.watcher.staleness, lambda: self.watcher.stale)
        self.router = Router(
            lambda: self.watcher.table, self.upstreams, create_balancer(settings.balancer)
        )
        policy = settings.url_policy
        self.upstream = upstream or UpstreamClient(
            settings.client, refuse_address=lambda ip: is_refused_address(ip, policy)
        )
        self.forwarder = Forwarder(
            self.router, self.upstream, RetryBudget(ratio=settings.retry_ratio), self.metrics
        )
        # The dashboard's page and assets hold no data: a browser loads them, then asks for a key.
        auth = replace(settings.auth, public_paths=settings.auth.public_paths | SHELL_PATHS)
        self.authenticator = Authenticator(auth, http=self.http)
        self.rate_limiter = (
            RateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        )
        self.admission = AdmissionQueue(
            settings.max_concurrent, settings.max_queued, settings.max_queue_wait
        )
        self.streams = AdmissionQueue(settings.max_streams, 0, 1.0)
        self.metrics.queue_depth.set_function(lambda: float(self.admission.queued))
        self.a2a = A2AGateway(
            self.forwarder,
            self.watcher,
            self.metrics,
            A2ASettings(public_url=settings.public_url, max_body_bytes=settings.max_body_bytes),
        )

    def _on_table(self, table: RouteTable) -> None:
        self.upstreams.forget(table.keys())
        routable = sum(r.routable for routes in table.services.values() for r in routes)
        total = sum(len(routes) for routes in table.services.values())
        self.metrics.table_index.set(table.index)
        self.metrics.table_instances.labels(routable="true").set(routable)
        self.metrics.table_instances.labels(routable="false").set(total - routable)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if self.settings.auth.jwks_url:
            await self.authenticator.warm()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.watcher.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
        await self.upstream.aclose()
        if self._own_http:
            await self.http.aclose()


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    watcher = _gateway(request).watcher
    if not watcher.table.loaded:
        return JSONResponse({"status": "loading routes"}, status_code=503)
    body = {"status": "ready", "routes": watcher.table.index, "stale": watcher.stale}
    return JSONResponse(body)


async def metrics(request: Request) -> Response:
    registry = _gateway(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    # The gateway's CSP refuses inline styles: the page links its stylesheet.
    return HTMLResponse(docs_page(request.app.state.openapi, stylesheet="/docs.css"))


async def docs_css(request: Request) -> Response:
    return Response(DOCS_CSS, media_type="text/css")


async def _no_route(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), structured like every error."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status != 405:
        return await handle_exception(request, NotFound())
    problem = {
        "type": "urn:meshgate:error:method-not-allowed",
        "title": "Method not allowed",
        "status": 405,
        "detail": f"{request.method} is not allowed here",
    }
    headers = {**(getattr(exc, "headers", None) or {}), "cache-control": "no-store"}
    return JSONResponse(problem, 405, headers, media_type="application/problem+json")


#: Routes that reach upstreams: rate-limited per principal and admitted by the queue.
_PROXIED = ("/a2a/", "/v1/invoke/", "/v1/stream/", "/mcp")


class _Dispatch:
    """``/a2a/`` to the fast path, everything else to Starlette; limits on proxied routes."""

    def __init__(self, gateway: Gateway, rest: ASGIApp) -> None:
        self.gateway = gateway
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.rest(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(_PROXIED):
            await self.rest(scope, receive, send)
            return
        await _proxied(self.gateway, self.rest, scope, receive, send, path)


async def _proxied(
    gateway: Gateway,
    rest: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    path: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A request to a proxied route: rate limit, admission, then A2A or ``rest``.

    ``extra``: security headers for every answer (the fast path; the middleware
    stack adds them itself).
    """
    extra = extra or []
    try:
        admission = _admission(gateway, scope)
        if not admission.try_acquire():
            await admission.acquire()
    except GatewayError as error:
        await _refuse(gateway, send, error, scope["method"], path, extra)
        return
    try:
        if path.startswith("/a2a/"):
            await gateway.a2a(scope, receive, send, path, extra)
        else:
            await rest(scope, receive, send)
    finally:
        admission.release()


def _admission(gateway: Gateway, scope: Scope) -> AdmissionQueue:
    """The rate limit (raises RateLimited), then the queue the request is to enter."""
    if gateway.rate_limiter is not None:
        wait = gateway.rate_limiter.check(_caller(scope))
        if wait is not None:
            gateway.metrics.refused("rate-limited").inc()
            raise RateLimited("too many requests", retry_after=wait)
    # GETs listen (a session's stream, a subscription): counted apart, never queued.
    return gateway.streams if scope["method"] == "GET" else gateway.admission


async def _refuse(
    gateway: Gateway,
    send: Send,
    error: GatewayError,
    method: str,
    path: str,
    extra: list[tuple[bytes, bytes]],
) -> None:
    if isinstance(error, Overloaded):
        gateway.metrics.refused("overloaded").inc()
    await send_error(send, error, jsonrpc=is_jsonrpc_route(method, path), extra=extra)


class Reply(Protocol):
    """What the server hands :meth:`_FastA2A.raw` to answer with: the request
    cycle of ``meshgate.protocol`` (typed here: gateway/ imports only registry/)."""

    response_started: bool

    async def whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """One complete answer; ``headers`` carry its Content-Length."""

    async def send(self, message: Message) -> None:
        """ASGI send, for anything else (errors, streams)."""

    async def receive(self) -> Message:
        """ASGI receive (the body is already taken: only a disconnect is left)."""


class _FastA2A:
    """``/a2a/`` without the Starlette stack: the same checks, in the same order, inline.

    Takes only the common case: a raw path that normalises under ``/a2a/``, a
    ``Content-Length``, no ``Origin`` and no preflight. Anything else (CORS,
    chunked bodies, odd paths) goes through the middleware stack as before.
    Answers carry the same security headers; an unexpected exception gets the
    structured 500 of ``handle_exception`` and propagates to the server, as
    Starlette's ``ServerErrorMiddleware`` does.
    """

    def __init__(self, gateway: Gateway, headers: SecurityHeadersMiddleware) -> None:
        self.gateway = gateway
        self.max_body_bytes = gateway.settings.max_body_bytes
        self.extra = headers.api_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request and return True, or return False having touched nothing."""
        raw = scope.get("raw_path")
        if not raw or not raw.startswith(b"/a2a/"):
            return False
        method: str = scope["method"]
        if method == "OPTIONS":
            return False
        target = raw.partition(b"?")[0]
        path = normalize_path(target)
        if path is None or not path.startswith("/a2a/"):
            return False
        length = _plain_length(scope["headers"])
        if length is None:
            return False

        started = False

        async def tracked(message: Message) -> None:
            # Every answer below adds the security headers itself (``extra``).
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._serve(scope, receive, tracked, path, target, length)
        except Exception as exc:
            if not started:
                error = exc if isinstance(exc, GatewayError) else GatewayError()
                jsonrpc = is_jsonrpc_route(method, scope["path"])
                await send_error(tracked, error, jsonrpc=jsonrpc, extra=self.extra)
            raise
        return True

    async def raw(self, scope: Scope, body: bytes, reply: Reply) -> bool:
        """``POST /a2a/{agent}/`` (or a skill's) with its body in hand, answered
        through ``reply`` without ASGI messages for the usual answer; the same
        checks, in the same order, as :meth:`__call__`. False (nothing touched)
        for any other request."""
        raw = scope.get("raw_path")
        if not raw or scope["method"] != "POST":
            return False
        target = raw.partition(b"?")[0]
        path = normalize_path(target)
        if path is None or not _is_jsonrpc_endpoint(path):
            return False
        length = _plain_length(scope["headers"])
        if length is None:
            return False
        # _serve's steps, inline: each coroutine level costs every request twice
        # (called, then resumed when the upstream answers).
        send = reply.send
        error: GatewayError | None = None
        try:
            error = self._body_error(length)
            if error is None:
                gateway = self.gateway
                credentials = strip_credentials(scope, path, target)
                try:
                    await authenticate(scope, gateway.authenticator, credentials)
                except Unauthorized as refused:
                    jsonrpc = is_jsonrpc_route("POST", path)
                    await send_error(send, refused, jsonrpc=jsonrpc, extra=self.extra)
                    return True
                try:
                    admission = _admission(gateway, scope)
                    if not admission.try_acquire():
                        await admission.acquire()
                except GatewayError as limited:
                    await _refuse(gateway, send, limited, "POST", path, self.extra)
                    return True
                try:
                    await gateway.a2a(scope, reply.receive, send, path, self.extra, body, reply)
                finally:
                    admission.release()
                return True
            jsonrpc = is_jsonrpc_route("POST", scope["path"])
            await send_error(send, error, jsonrpc=jsonrpc, extra=self.extra)
        except Exception as exc:
            if not reply.response_started:
                error = exc if isinstance(exc, GatewayError) else GatewayError()
                jsonrpc = is_jsonrpc_route("POST", scope["path"])
                await send_error(send, error, jsonrpc=jsonrpc, extra=self.extra)
            raise
        return True

    def _body_error(self, length: bytes) -> GatewayError | None:
        """BodyLimitMiddleware's verdict: before authentication, on the path as received."""
        if not length.isdigit():
            return BadRequest("bad Content-Length")
        if int(length) > self.max_body_bytes:
            return PayloadTooLarge()
        return None

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, path: str, target: bytes, length: bytes
    ) -> None:
        method: str = scope["method"]
        error = self._body_error(length)
        if error is None:
            gateway = self.gateway
            credentials = strip_credentials(scope, path, target)
            try:
                await authenticate(scope, gateway.authenticator, credentials)
            except Unauthorized as refused:
                jsonrpc = is_jsonrpc_route(method, path)
                await send_error(send, refused, jsonrpc=jsonrpc, extra=self.extra)
                return
            await _proxied(gateway, _unreachable, scope, receive, send, path, self.extra)
            return
        jsonrpc = is_jsonrpc_route(method, scope["path"])
        await send_error(send, error, jsonrpc=jsonrpc, extra=self.extra)


def _is_jsonrpc_endpoint(path: str) -> bool:
    """``/a2a/{agent}`` or ``/a2a/skills/{skill}`` (canonical: no trailing slash)."""
    name, _, rest = path[5:].partition("/")
    if name == "skills":
        name, _, rest = rest.partition("/")
    return bool(name) and rest == ""


def _plain_length(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The Content-Length of a request the fast paths take: none with an Origin (CORS)."""
    length: bytes | None = None
    for name, value in headers:
        if name == b"origin":
            return None
        if name == b"content-length" and length is None:
            length = value
    return length


async def _unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the A2A fast path passes only /a2a/ paths")


class _GatewayApp(Starlette):
    """The Starlette app, with the A2A fast path in front of its middleware stack."""

    fast: _FastA2A | None = None
    #: The server's lean path (:mod:`meshgate.protocol`): ``fast.raw`` once set up.
    raw_request: Callable[[Scope, bytes, Reply], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast
        if fast is not None and scope["type"] == "http" and await fast(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def _caller(scope: Scope) -> str:
    principal = (scope.get("state") or {}).get("principal")
    if principal is not None and principal.kind != "anonymous":
        return str(principal.id)
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "anonymous"


def _mesh_view(gateway: Gateway, version: str) -> MeshView:
    watcher = gateway.watcher
    return MeshView(
        table=watcher.table,
        upstreams=gateway.upstreams,
        metrics=gateway.metrics,
        finished=gateway.forwarder.finished,
        stale=watcher.stale,
        staleness=watcher.staleness,
        version=version,
    )


def _version() -> str:
    try:
        return importlib.metadata.version("meshgate")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def create_gateway(
    settings: GatewaySettings,
    *,
    http: httpx.AsyncClient | None = None,
    upstream: UpstreamClient | None = None,
) -> Starlette:
    """The gateway app. ``http`` is the control-plane client (registry, JWKS)."""
    gateway = Gateway(settings, http=http, upstream=upstream)
    redact_session_ids()
    mcp = mount_mcp(gateway, settings.mcp)
    version = _version()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gateway.running(), mcp.lifespan():
            yield

    handlers: dict[Any, Any] = {
        GatewayError: handle_exception,
        404: _no_route,
        405: _no_route,
        Exception: handle_exception,
    }
    rest = _GatewayApp(
        routes=[
            Route("/v1/invoke/{agent}", invoke, methods=["POST"]),
            Route("/v1/stream/{agent}", stream, methods=["POST"]),
            Route("/v1/agents", list_agents, methods=["GET"]),
            # The aggregated MCP endpoint handles GET, POST and DELETE itself.
            Route("/mcp", mcp.app),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Route("/docs.css", docs_css, methods=["GET"]),
            *ui_routes(lambda: _mesh_view(gateway, version)),
        ],
        lifespan=lifespan,
        exception_handlers=handlers,
    )
    rest.state.gateway = gateway
    rest.state.a2a = gateway.a2a
    rest.state.mcp = mcp
    rest.state.openapi = openapi_document(version)
    # Added innermost first: Starlette puts each new middleware outside the last.
    rest.add_middleware(_Wrap, dispatch=lambda app: _Dispatch(gateway, app))
    rest.add_middleware(AuthMiddleware, authenticator=gateway.authenticator)
    rest.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    rest.add_middleware(SecurityHeadersMiddleware, settings=settings.headers)
    rest.fast = _FastA2A(gateway, SecurityHeadersMiddleware(_unreachable, settings.headers))
    rest.raw_request = rest.fast.raw
    return rest


class _Wrap:
    """Puts the fast path in front of the Starlette router, inside its middleware."""

    def __init__(self, app: ASGIApp, dispatch: Any) -> None:
        self.app = dispatch(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
