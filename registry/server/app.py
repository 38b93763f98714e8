"""The registry HTTP service: a Starlette app over one backend."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.backends import RegistryBackend
from registry.backends import Scope as WatchScope
from registry.errors import (
    BackendUnavailable,
    BadRequest,
    FieldError,
    InvalidRequest,
    PayloadTooLarge,
    RegistryError,
    UnsupportedMediaType,
)
from registry.models import AgentQuery, Health, HeartbeatBody, Instance, Kind, Registration
from registry.probes import ProbeResult
from registry.server.auth import ApiKeys
from registry.server.checker import ProbeFn, ProbeScheduler
from registry.server.metrics import RegistryMetrics
from registry.server.openapi import docs_page, openapi_document
from registry.server.query import MAX_WAIT_SECONDS, parse_blocking, parse_bool
from registry.ssrf import Resolver, UrlPolicy
from registry.validation import Limits, name_errors, validate_name, validate_registration

__all__ = ["RegistrySettings", "create_app"]

logger = logging.getLogger("meshgate.registry")

_MAX_CACHED_ANSWERS = 64
_PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class RegistrySettings:
    """How a registry service behaves; the CLI builds this from flags."""

    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    api_keys: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    probe_concurrency: int = 32
    max_wait_seconds: float = MAX_WAIT_SECONDS
    #: Resolves names for the URL policy; ``None`` uses the system resolver.
    resolver: Resolver | None = None
    #: The probe to run; tests may substitute one that counts calls.
    probe: ProbeFn | None = None


class _Service:
    """What the handlers share: backend, settings, checker, metrics."""

    def __init__(
        self, backend: RegistryBackend, settings: RegistrySettings, http: httpx.AsyncClient | None
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.keys = ApiKeys(settings.api_keys)
        self.metrics = RegistryMetrics()
        self.metrics.store_staleness.set_function(backend.staleness)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self.checker: ProbeScheduler | None = None
        self.ready = False
        # Rendered /v1/agents answers at the agents' current index: gateways
        # and agents re-ask the same questions after every change.
        self.agent_answers: dict[AgentQuery, bytes] = {}
        self.agent_answers_index = 0
        self._stats: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.backend.start()
        if not self.backend.runs_own_checks:
            kwargs: dict[str, Any] = {}
            if self.settings.probe is not None:
                kwargs["probe_fn"] = self.settings.probe
            self.checker = ProbeScheduler(
                self.backend,
                self.http,
                self.settings.url_policy,
                concurrency=self.settings.probe_concurrency,
                resolver=self.settings.resolver,
                observe=self._observe_probe,
                **kwargs,
            )
            await self.checker.start()
        self._stats = asyncio.create_task(self._follow_catalogue(), name="registry-stats")
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        if self._stats is not None:
            self._stats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats
        if self.checker is not None:
            await self.checker.close()
        await self.backend.close()
        if self._own_http:
            await self.http.aclose()

    def _observe_probe(self, instance: Instance, result: ProbeResult, elapsed: float) -> None:
        outcome = "ok" if result.ok else "fail"
        self.metrics.probes.labels(kind=instance.kind.value, result=outcome).inc()
        self.metrics.probe_latency.labels(kind=instance.kind.value).observe(elapsed)

    async def _follow_catalogue(self) -> None:
        # Gauges follow the catalogue through the same watch clients use, at
        # most once a second, so a burst of registrations costs one recount.
        index = 0
        while True:
            index = await self.backend.wait(WatchScope.everything(), index, 60.0)
            # A remote store (Consul) may be unreachable: the gauges wait for it.
            with contextlib.suppress(BackendUnavailable):
                snapshot = await self.backend.all_instances()
                self.metrics.observe_catalogue(snapshot.index, snapshot.value)
            await asyncio.sleep(1.0)


def _version() -> str:
    try:
        return importlib.metadata.version("meshgate")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _service(request: Request) -> _Service:
    service: _Service = request.app.state.registry
    return service


# -- request helpers ---------------------------------------------------------


async def _read_json(request: Request, limit: int, *, required: bool) -> Any:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
    if not body.strip():
        if required:
            raise BadRequest("a JSON body is required", errors=[FieldError("body", "missing")])
        return None
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"the body must be application/json, not {media!r}")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the decoder goes (a 1 MiB "[[[...").
        raise BadRequest(
            "the body is not valid JSON", errors=[FieldError("body", str(exc))]
        ) from None


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"])
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest("the body breaks the registration schema", errors=errors) from None


def _names(request: Request) -> tuple[str, str]:
    service = str(request.path_params["service"])
    instance = str(request.path_params["instance"])
    if errors := name_errors(service, instance):
        raise InvalidRequest("invalid name in the path", errors=errors)
    return service, instance


def _instance_response(instance: Instance, status: int = 200) -> Response:
    return Response(instance.json_bytes, status_code=status, media_type="application/json")


def _list_body(items: list[bytes]) -> bytes:
    # One copy of the records: at 10,000 of them the body is megabytes.
    if len(items) > 1:
        return b",".join([b"[" + items[0], *items[1:-1], items[-1] + b"]"])
    return b"[" + b"".join(items) + b"]"


def _list_headers(request: Request, index: int) -> dict[str, str]:
    """The index, and how stale the store's answer may be (a Consul store that
    cannot reach Consul serves its last view: Consul's own ``X-Consul-LastContact``)."""
    headers = {"X-Meshgate-Index": str(index)}
    staleness = _service(request).backend.staleness()
    if staleness > 0:
        headers["X-Meshgate-Stale-Seconds"] = f"{staleness:.3f}"
    return headers


def _list_response(request: Request, items: list[bytes], index: int) -> Response:
    body = _list_body(items)
    return Response(body, media_type="application/json", headers=_list_headers(request, index))


async def _block(request: Request, scope: WatchScope) -> None:
    service = _service(request)
    blocking = parse_blocking(request.query_params, max_wait=service.settings.max_wait_seconds)
    if blocking is not None and blocking.wait > 0:
        waiting = service.backend.wait(scope, blocking.index, blocking.jittered_wait())
        await _unless_disconnected(request, waiting)


async def _unless_disconnected(request: Request, waiting: Awaitable[object]) -> None:
    """Await ``waiting``, or stop once the client has gone.

    A blocking query whose caller went away (a stopped gateway) would otherwise
    hold the server's graceful shutdown for the rest of its wait.
    """
    wait = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnect(request.receive))
    try:
        await asyncio.wait((wait, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        wait.cancel()
        gone.cancel()
    if wait.done() and not wait.cancelled():
        wait.result()  # the backend's error, if any, is the request's


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# -- endpoints ---------------------------------------------------------------


async def put_instance(request: Request) -> Response:
    service = _service(request)
    name, instance_id = _names(request)
    owner = service.keys.owner(request)
    data = await _read_json(request, service.settings.limits.max_body_bytes, required=True)
    registration = _validated(Registration, data)
    registration = await validate_registration(
        name,
        instance_id,
        registration,
        service.settings.url_policy,
        limits=service.settings.limits,
        resolver=service.settings.resolver,
    )
    record, created = await service.backend.register(name, instance_id, registration, owner=owner)
    if service.checker is not None:
        service.checker.schedule(record.key)
    logger.info("registered %s/%s (%s) at %s", name, instance_id, record.kind.value, record.url)
    return _instance_response(record, 201 if created else 200)


async def get_instance(request: Request) -> Response:
    name, instance_id = _names(request)
    return _instance_response(await _service(request).backend.get(name, instance_id))


async def delete_instance(request: Request) -> Response:
    service = _service(request)
    name, instance_id = _names(request)
    owner = service.keys.owner(request)
    await service.backend.deregister(name, instance_id, owner=owner)
    logger.info("deregistered %s/%s", name, instance_id)
    return Response(status_code=204)


async def instance_endpoint(request: Request) -> Response:
    # One route for the three methods, so a 405 lists all of them in Allow.
    if request.method == "PUT":
        return await put_instance(request)
    if request.method == "DELETE":
        return await delete_instance(request)
    return await get_instance(request)  # GET, and the HEAD Starlette adds to it


async def heartbeat(request: Request) -> Response:
    service = _service(request)
    name, instance_id = _names(request)
    owner = service.keys.owner(request)
    data = await _read_json(request, 16_384, required=False)
    body = _validated(HeartbeatBody, data) if data is not None else HeartbeatBody()
    record = await service.backend.heartbeat(
        name, instance_id, status=body.status, note=body.note, owner=owner
    )
    return _instance_response(record)


async def list_services(request: Request) -> Response:
    await _block(request, WatchScope.everything())
    result = await _service(request).backend.services()
    items = [s.model_dump_json().encode() for s in result.value]
    return _list_response(request, items, result.index)


async def list_instances(request: Request) -> Response:
    name = str(request.path_params["service"])
    validate_name(name, "service")
    passing = parse_bool(request.query_params, "passing")
    await _block(request, WatchScope(name))
    result = await _service(request).backend.instances(name, passing_only=passing)
    return _list_response(request, [i.json_bytes for i in result.value], result.index)


async def list_all_instances(request: Request) -> Response:
    passing = parse_bool(request.query_params, "passing")
    await _block(request, WatchScope.everything())
    result = await _service(request).backend.all_instances()
    found = [i for i in result.value if i.health is Health.PASSING] if passing else result.value
    return _list_response(request, [i.json_bytes for i in found], result.index)


async def list_agents(request: Request) -> Response:
    params = request.query_params
    query = AgentQuery(
        skill=params.get("skill") or None,
        tag=params.get("tag") or None,
        text=params.get("q") or None,
        passing_only=parse_bool(params, "passing"),
    )
    scope = WatchScope.of_kind(Kind.A2A_AGENT)
    await _block(request, scope)
    service = _service(request)
    index = service.backend.index(scope)
    if service.agent_answers_index != index:
        service.agent_answers.clear()
        service.agent_answers_index = index
    body = service.agent_answers.get(query)
    if body is None:
        result = await service.backend.agents(query)
        body = _list_body([i.json_bytes for i in result.value])
        if result.index == index and len(service.agent_answers) < _MAX_CACHED_ANSWERS:
            service.agent_answers[query] = body
    return Response(body, media_type="application/json", headers=_list_headers(request, index))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    service = _service(request)
    checker_ok = service.checker is None or service.checker.running
    if service.ready and checker_ok:
        return JSONResponse({"status": "ready", "backend": service.backend.name})
    return JSONResponse({"status": "starting"}, status_code=503)


async def metrics(request: Request) -> Response:
    registry = _service(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    return HTMLResponse(docs_page(request.app.state.openapi))


# -- errors and metrics ------------------------------------------------------


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    headers = {"WWW-Authenticate": 'Bearer realm="meshgate-registry"'} if exc.status == 401 else {}
    return JSONResponse(exc.problem(), status_code=exc.status, media_type=_PROBLEM, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status_code", 500))
    title = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
    body = {"type": "about:blank", "title": title, "status": status, "detail": title}
    # A 405 names the methods that are allowed (RFC 9110 §15.5.6).
    headers = dict(getattr(exc, "headers", None) or {})
    return JSONResponse(body, status_code=status, media_type=_PROBLEM, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    body = {
        "type": "urn:meshgate:error:internal",
        "title": "Internal error",
        "status": 500,
        "detail": "the registry failed to answer; the error is in its log",
    }
    return JSONResponse(body, status_code=500, media_type=_PROBLEM)


class _MetricsMiddleware:
    """Counts and times requests by route template (never by raw path)."""

    def __init__(self, app: ASGIApp, metrics: RegistryMetrics, templates: dict[Any, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router records the matched endpoint in the (shared) scope.
            template = self.templates.get(scope.get("endpoint"), "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(route=template, method=method, status=str(status)).inc()
            # A blocking query's time is mostly its wait, which says nothing of speed.
            if b"index=" not in scope.get("query_string", b""):
                self.metrics.latency.labels(route=template, method=method).observe(
                    time.perf_counter() - started
                )


def create_app(
    backend: RegistryBackend,
    settings: RegistrySettings | None = None,
    *,
    http: httpx.AsyncClient | None = None,
) -> Starlette:
    """The registry service over ``backend``.

    ``http`` is the client the active checks use (one is made when omitted).
    The app's lifespan starts and closes the backend and the checker.
    """
    service = _Service(backend, settings or RegistrySettings(), http)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.close()

    instance_path = "/v1/services/{service}/instances/{instance}"
    routes = [
        Route(instance_path, instance_endpoint, methods=["GET", "PUT", "DELETE"]),
        Route(instance_path + "/heartbeat", heartbeat, methods=["PUT"]),
        Route("/v1/services", list_services, methods=["GET"]),
        Route("/v1/services/{service}/instances", list_instances, methods=["GET"]),
        Route("/v1/instances", list_all_instances, methods=["GET"]),
        Route("/v1/agents", list_agents, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            RegistryError: _registry_error,
            404: _http_error,
            405: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.registry = service
    app.state.openapi = openapi_document(_version())
    templates = {route.endpoint: route.path for route in routes}
    app.add_middleware(_MetricsMiddleware, metrics=service.metrics, templates=templates)
    return app
