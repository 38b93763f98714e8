"""Resources and prompts of the mesh's tool servers, aggregated for ``/mcp``.

Tool servers register their tools, not their resources or prompts, so those
are asked for: stateless 2026-07-28 ``resources/list``,
``resources/templates/list`` and ``prompts/list`` to each routable tool
server whose instances changed, when the route table moves (never per client
request). Prompts are named ``{service}__{prompt}`` as tools are. Resources
keep their URIs, each mapped to the service that lists it; when two services
list one URI (or templates that match it), the first service by name serves it.
Reads and ``prompts/get`` go to the owner through the forwarder.

Fail-open: a server that does not answer keeps what it last answered while it
stays routable and is asked again after a backoff; one that leaves the table
drops out. A server without resources or prompts simply offers none.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from gateway.errors import GatewayError
from gateway.forwarding import Forwarder, Target
from gateway.mcp.offers import Extras, Offer, build_extras
from gateway.mcp.policy import ToolPolicy, request_principal
from gateway.mcp.upstream import MCP_VERSION, compact, read_answer, traced_meta
from gateway.proxy import UpstreamError
from gateway.table import RouteTable
from gateway.watcher import RouteWatcher
from registry.models import Kind

__all__ = ["UpstreamExtras", "extras_handlers"]

logger = logging.getLogger("meshgate.gateway.mcp")

ResultT = TypeVar("ResultT", types.ReadResourceResult, types.GetPromptResult)

_META = "io.modelcontextprotocol/"
_CLIENT = {"name": "meshgate-gateway", "version": "0.1.0"}
_MAX_PAGES = 10
_MAX_ANSWER = 16 << 20
#: (the Offer field, the list method, the result's key)
_LISTS = (
    ("resources", "resources/list", "resources"),
    ("templates", "resources/templates/list", "resourceTemplates"),
    ("prompts", "prompts/list", "prompts"),
)


def _validated(model: type[ResultT], result: dict[str, Any], service: str) -> ResultT:
    try:
        return model.model_validate(result)
    except ValidationError:
        raise MCPError(types.INTERNAL_ERROR, f"{service} answered a malformed result") from None


class _Unavailable(Exception):
    """The service did not answer usably (it keeps what it answered last)."""


#: Called with (resources changed, prompts changed) after a refresh that changed something.
OnChange = Callable[[bool, bool], Awaitable[None]]


class UpstreamExtras:
    """Keeps :attr:`current` up to date with the route table; run :meth:`run` in the lifespan."""

    def __init__(
        self,
        forwarder: Forwarder,
        watcher: RouteWatcher,
        *,
        on_change: OnChange | None = None,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
    ) -> None:
        self._forwarder = forwarder
        self._watcher = watcher
        self._on_change = on_change
        self._retry_base, self._retry_cap = retry_base, retry_cap
        self._ids = itertools.count(1)
        self._offers: dict[str, Offer] = {}
        #: The instances each offer was fetched from: refetched when they change.
        self._fetched_from: dict[str, frozenset[tuple[str, str]]] = {}
        self._failures = 0
        self.current = Extras()

    async def run(self) -> None:
        with self._watcher.subscribe() as updates:
            while True:
                failed = await self.refresh(self._watcher.table)
                self._failures = self._failures + 1 if failed else 0
                delay = math.inf
                if failed:
                    delay = min(self._retry_cap, self._retry_base * 2 ** (self._failures - 1))
                with anyio.move_on_after(delay):
                    await anext(updates)

    async def refresh(self, table: RouteTable) -> bool:
        """Ask the tool servers of ``table`` that changed; True if any did not answer."""
        servers = {
            service: frozenset(route.key for route in routes)
            for service, routes in table.routable_services.items()
            if routes and routes[0].kind is Kind.MCP_SERVER
        }
        stale = [s for s, keys in servers.items() if self._fetched_from.get(s) != keys]
        failed: list[str] = []

        async def fetch(service: str) -> None:
            try:
                self._offers[service] = await self._fetch(service)
                self._fetched_from[service] = servers[service]
            except _Unavailable as exc:
                logger.info("no resources/prompts from %s yet: %s", service, exc)
                failed.append(service)
            except Exception:  # one odd upstream must not stop the gateway's lifespan
                logger.exception("resources/prompts of %s could not be read", service)
                failed.append(service)

        limit = anyio.Semaphore(8)

        async def bounded(service: str) -> None:
            async with limit:
                await fetch(service)

        async with anyio.create_task_group() as tg:
            for service in stale:
                tg.start_soon(bounded, service)
        for gone in set(self._offers) - set(servers):
            del self._offers[gone]
            self._fetched_from.pop(gone, None)
        await self._publish(build_extras(self._offers))
        return bool(failed)

    async def _publish(self, extras: Extras) -> None:
        before, self.current = self.current, extras
        resources = before.resources_fingerprint != extras.resources_fingerprint
        prompts = before.prompts_fingerprint != extras.prompts_fingerprint
        if (resources or prompts) and self._on_change is not None:
            await self._on_change(resources, prompts)

    async def _fetch(self, service: str) -> Offer:
        lists: dict[str, tuple[Mapping[str, Any], ...]] = {}
        for field_name, method, key in _LISTS:
            items: list[Mapping[str, Any]] = []
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                params = {"cursor": cursor} if cursor else {}
                try:
                    result = await self.request(service, method, params)
                except MCPError as exc:
                    if exc.error.code == types.METHOD_NOT_FOUND:
                        break  # the server has no such capability: nothing to list
                    raise _Unavailable(f"{method}: {exc.error.message}") from None
                page = result.get(key)
                if not isinstance(page, list):
                    raise _Unavailable(f"{method} answered no {key} list")
                items += [item for item in page if isinstance(item, dict)]
                cursor = result.get("nextCursor")
                if not isinstance(cursor, str) or not cursor:
                    break
            lists[field_name] = tuple(items)
        return Offer(**lists)

    async def read_resource(
        self, uri: str, allowed: Callable[[str], bool] = lambda name: True
    ) -> types.ReadResourceResult:
        """``resources/read`` of ``uri`` at the service that serves it, if
        ``allowed(policy name)``; else it is unknown."""
        owner = self.current.owner_of(uri)
        if owner is None or not allowed(owner[1]):
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}")
        service = owner[0]
        result = await self._forward(service, "resources/read", {"uri": uri}, uri)
        return _validated(types.ReadResourceResult, result, service)

    async def get_prompt(
        self, public: str, arguments: Mapping[str, str] | None
    ) -> types.GetPromptResult:
        """``prompts/get`` of the prompt listed as ``public``."""
        owner = self.current.prompt_owners.get(public)
        if owner is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {public}")
        service, name = owner
        params = {"name": name, "arguments": dict(arguments or {})}
        result = await self._forward(service, "prompts/get", params, name)
        return _validated(types.GetPromptResult, result, service)

    async def _forward(
        self, service: str, method: str, params: Mapping[str, Any], name: str
    ) -> dict[str, Any]:
        try:
            return await self.request(service, method, params, name=name)
        except _Unavailable as exc:
            raise MCPError(types.INTERNAL_ERROR, f"{service} is unavailable: {exc}") from None

    async def request(
        self, service: str, method: str, params: Mapping[str, Any], *, name: str | None = None
    ) -> dict[str, Any]:
        """One stateless request to ``service``: its result; MCPError is the upstream's own."""
        request_id = next(self._ids)
        meta = {
            _META + "protocolVersion": MCP_VERSION,
            _META + "clientInfo": _CLIENT,
            _META + "clientCapabilities": {},
        }
        body = compact(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": method,
                "params": {**params, "_meta": traced_meta(meta)},
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"mcp-protocol-version", MCP_VERSION.encode()),
            (b"mcp-method", method.encode()),
        ]
        if name is not None and name.isascii() and name.isprintable():
            headers.append((b"mcp-name", name.encode()))
        raw, content_type = await self._exchange(service, headers, body)
        answer = read_answer(service, raw, content_type, request_id)
        if answer.error is not None:
            raise answer.error
        if answer.result is None:
            raise _Unavailable(answer.failure or f"{service} failed")
        return answer.result

    async def _exchange(
        self, service: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[bytes, str]:
        try:
            exchange = await self._forwarder.send(
                Target(service=service), b"POST", None, headers, body, idempotent=True
            )
        except GatewayError as error:
            raise _Unavailable(error.detail) from None
        response = exchange.response
        content_type = next((v for k, v in response.headers if k == b"content-type"), b"")
        try:
            raw = await response.read(_MAX_ANSWER)
        except UpstreamError:
            await exchange.finish(ok=False)
            raise _Unavailable(f"{service} failed while answering") from None
        await exchange.finish()
        if response.status >= 500 or (response.status >= 400 and not raw):
            raise _Unavailable(f"{service} answered HTTP {response.status}")
        return raw, content_type.decode("latin-1")


def extras_handlers(extras: UpstreamExtras, policy: ToolPolicy | None) -> dict[str, Any]:
    """The low-level ``Server``'s resource and prompt handlers (keyword arguments).

    Prompts pass the tool policy by their public name as tools do, resources
    and templates by ``{service}__{their name}`` (a refused one is unknown).
    """

    def allowed(ctx: ServerRequestContext[Any, Any]) -> Callable[[str], bool]:
        if policy is None:
            return lambda name: True
        rule = policy.rule_for(request_principal(ctx.request))
        return rule.allows

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        current, allows = extras.current, allowed(ctx)
        resources = [r for r in current.resources if allows(current.resource_names[r.uri])]
        return types.ListResourcesResult(resources=resources)

    async def list_resource_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        current, allows = extras.current, allowed(ctx)
        templates = [
            template
            for template, (_, _, name) in zip(
                current.templates, current.template_owners, strict=True
            )
            if allows(name)
        ]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await extras.read_resource(params.uri, allowed(ctx))

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompts = extras.current.prompts
        if policy is None:
            return types.ListPromptsResult(prompts=list(prompts))
        return types.ListPromptsResult(
            prompts=policy.filter(request_principal(ctx.request), prompts)
        )

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if policy is not None and not policy.allows(request_principal(ctx.request), params.name):
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
        return await extras.get_prompt(params.name, params.arguments)

    return {
        "on_list_resources": list_resources,
        "on_list_resource_templates": list_resource_templates,
        "on_read_resource": read_resource,
        "on_list_prompts": list_prompts,
        "on_get_prompt": get_prompt,
    }
