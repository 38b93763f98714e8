"""``/mcp``: the whole mesh as one MCP server, on the SDK's low-level ``Server``.

Both protocol eras are served at one endpoint: stateless 2026-07-28 requests
and the handshake versions with sessions (the SDK's streamable-HTTP session
manager, which the host's lifespan runs). ``tools/list`` answers the
:mod:`~gateway.mcp.catalog` of the current route table; ``tools/call`` goes
upstream through the gateway's forwarder (:mod:`~gateway.mcp.upstream`).
When the route table moves and the tool set differs, every open session gets
``notifications/tools/list_changed``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp

from gateway.forwarding import Target
from gateway.mcp.cache import CacheSettings, ResultCache
from gateway.mcp.catalog import Catalog, CatalogCache, Entry
from gateway.mcp.fastpath import FastPath
from gateway.mcp.legacy import LegacySessions
from gateway.mcp.lists import ToolLists
from gateway.mcp.mesh import find_agents
from gateway.mcp.policy import ToolPolicy, request_principal
from gateway.mcp.resources import UpstreamExtras, extras_handlers
from gateway.mcp.upstream import Upstream, error_result

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["McpMount", "McpSettings", "Sessions", "mount_mcp"]

logger = logging.getLogger("meshgate.gateway.mcp")


#: Host headers and origins ``/mcp`` always admits (any port): this machine.
LOCAL_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")
LOCAL_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


@dataclass(frozen=True)
class McpSettings:
    """How ``/mcp`` is exposed.

    DNS-rebinding protection stays on: besides this machine, only the Host
    headers and Origins listed here are admitted (a gateway behind a load
    balancer lists the name clients use, e.g. ``mesh.example:443``).
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    #: How long stateless clients may reuse a ``tools/list`` answer (``ttlMs``).
    list_ttl_ms: int = 1_000
    session_idle_timeout: float = 1_800.0
    #: Which tools each principal may see and call; None allows every tool.
    tool_policy: ToolPolicy | None = None
    #: Results of read-only, idempotent upstream tools (``--cache-url/--cache-ttl/--no-cache``).
    cache: CacheSettings = field(default_factory=CacheSettings)

    def transport_security(self) -> TransportSecuritySettings:
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(dict.fromkeys((*LOCAL_HOSTS, *self.allowed_hosts))),
            allowed_origins=list(dict.fromkeys((*LOCAL_ORIGINS, *self.allowed_origins))),
        )


@dataclass(frozen=True)
class McpMount:
    """What the host wires in: serve ``app`` at ``/mcp`` (any method), run ``lifespan``."""

    app: ASGIApp
    lifespan: Callable[[], AbstractAsyncContextManager[None]]
    server: Server[Any]
    sessions: Sessions
    #: The tool servers' resources and prompts (:mod:`~gateway.mcp.resources`).
    extras: UpstreamExtras | None = None


#: The lists stateless clients may reuse for ``McpSettings.list_ttl_ms``.
_LISTS: tuple[CacheableMethod, ...] = (
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "prompts/list",
)


class _MeshServer(Server[Any]):
    """Announces ``listChanged`` on the handshake versions: tools, resources, prompts move."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options
            or NotificationOptions(
                tools_changed=True, resources_changed=True, prompts_changed=True
            ),
            experimental_capabilities,
            extensions,
        )


class Sessions:
    """The open handshake-era sessions (a server middleware notes each one it sees)."""

    def __init__(self) -> None:
        self._open: dict[int, ServerSession] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            connection = _connection_of(ctx.session)
            if connection is not None and id(connection) not in self._open:
                key = id(connection)
                self._open[key] = ctx.session
                connection.exit_stack.callback(self._open.pop, key, None)
        return await call_next(ctx)

    async def tools_changed(self) -> None:
        """``notifications/tools/list_changed`` to every open session."""
        await self._broadcast(ServerSession.send_tool_list_changed)

    async def lists_changed(self, resources: bool, prompts: bool) -> None:
        """``notifications/{resources,prompts}/list_changed`` to every open session."""
        if resources:
            await self._broadcast(ServerSession.send_resource_list_changed)
        if prompts:
            await self._broadcast(ServerSession.send_prompt_list_changed)

    async def _broadcast(self, notify: Callable[[ServerSession], Awaitable[None]]) -> None:
        # At once: a session whose stream is full must not hold the others up.
        async with anyio.create_task_group() as tg:
            for key, session in list(self._open.items()):
                tg.start_soon(self._deliver, key, session, notify)

    async def _deliver(
        self, key: int, session: ServerSession, notify: Callable[[ServerSession], Awaitable[None]]
    ) -> None:
        try:
            with anyio.fail_after(2):
                await notify(session)
        except Exception as exc:  # a session that went away: forget it
            logger.debug("list_changed not delivered: %r", exc)
            self._open.pop(key, None)


def _connection_of(session: ServerSession) -> Connection | None:
    """The connection a request's session belongs to (one per MCP session).

    mcp 2.3 exposes it publicly only as ``Context.connection``, and the
    low-level runner hands handlers a ``ServerRequestContext`` instead, whose
    ``ServerSession`` keeps it in ``_connection``. The one private access of
    this package; checked against mcp 2.3.0.
    """
    connection = getattr(session, "_connection", None)
    return connection if isinstance(connection, Connection) else None


def mount_mcp(gateway: Gateway, settings: McpSettings | None = None) -> McpMount:
    """The ``/mcp`` endpoint of ``gateway``; see :class:`McpMount` for the wiring."""
    settings = settings or McpSettings()
    cache = CatalogCache()
    results = ResultCache(settings.cache, gateway.metrics) if settings.cache.enabled else None
    legacy = LegacySessions(connect_timeout=gateway.settings.client.connect_timeout + 8)
    upstream = Upstream(
        gateway.forwarder, results, legacy, legacy_timeout=gateway.settings.client.read_timeout
    )
    sessions = Sessions()
    policy = settings.tool_policy
    extras = UpstreamExtras(gateway.forwarder, gateway.watcher, on_change=sessions.lists_changed)

    def catalog() -> Catalog:
        return cache.get(gateway.watcher.table)

    def catalog_schema(name: str) -> dict[str, Any] | None:
        return catalog().input_schema(name)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = catalog().tools
        if policy is not None:
            return types.ListToolsResult(tools=policy.filter(request_principal(ctx.request), tools))
        return types.ListToolsResult(tools=list(tools))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        entry = catalog().entries.get(params.name)
        # A denied tool is answered as an unknown one: no hint that it exists.
        if entry is None or (
            policy is not None and not policy.allows(request_principal(ctx.request), params.name)
        ):
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        arguments = params.arguments or {}
        if entry.kind == "tool":
            raw = ctx.params or {}
            meta = raw.get("_meta") if isinstance(raw.get("_meta"), dict) else None
            cache_as = params.name if entry.cacheable else None
            return await upstream.call_tool(
                entry.service,
                entry.name,
                entry.path,
                arguments,
                meta,
                cache_as=cache_as,
                param_headers=entry.param_headers,
            )
        return await _call_local(entry, arguments)

    async def _call_local(entry: Entry, arguments: dict[str, Any]) -> types.CallToolResult:
        text = arguments.get("text")
        context_id = arguments.get("contextId")
        context = context_id if isinstance(context_id, str) else None
        if entry.kind == "skill":
            if not isinstance(text, str) or not text:
                return error_result("give `text`: the message to the agent")
            return await upstream.send_message(
                Target(service=entry.service), text, entry.name, context
            )
        if entry.name == "find_agents":
            return find_agents(gateway.watcher.table, arguments)
        agent, skill = arguments.get("agent"), arguments.get("skill")
        if not isinstance(text, str) or not text:
            return error_result("give `text`: the message to delegate")
        if isinstance(agent, str) and agent:
            target = Target(service=agent)
        elif isinstance(skill, str) and skill:
            target = Target(skill=skill)
        else:
            return error_result("give `agent` (a name) or `skill` (a skill id)")
        return await upstream.send_message(
            target, text, skill if isinstance(skill, str) else None, context
        )

    server = _MeshServer(
        "meshgate",
        version="0.1.0",
        instructions="Every tool and agent of the Meshgate mesh: tools are named "
        "{service}__{tool}; agent skills {agent}__{skill}; meshgate__find_agents and "
        "meshgate__delegate reach agents by skill.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        cache_hints=dict.fromkeys(_LISTS, CacheHint(ttl_ms=settings.list_ttl_ms)),
        # Mcp-Param-* checks read the schema here, not from a tools/list per call;
        # under a policy the SDK's own lookup keeps refused tools unseen.
        get_tool_input_schema=catalog_schema if policy is None else None,
        **extras_handlers(extras, policy),
    )
    server.middleware.append(sessions)
    # Sessions' plain tools/list from answers shaped once per route table.
    lists = ToolLists(server, catalog, CacheHint(ttl_ms=settings.list_ttl_ms), policy)
    server.middleware.append(lists)
    server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=settings.transport_security(),
        session_idle_timeout=settings.session_idle_timeout,
    )
    manager = server.session_manager

    async def announce() -> None:
        # Subscribed before the first fingerprint is taken: no swap slips between.
        with gateway.watcher.subscribe() as updates:
            last = catalog().fingerprint
            async for _ in updates:
                current = catalog().fingerprint
                if current != last:
                    last = current
                    await sessions.tools_changed()

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with manager.run(), legacy.running(), anyio.create_task_group() as tg:
            tg.start_soon(announce)
            tg.start_soon(extras.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                if results is not None:
                    await results.aclose()

    fast = FastPath(
        server=server,
        catalog=catalog,
        upstream=upstream,
        security=settings.transport_security(),
        lists=lists,
        policy=policy,
        fallback=StreamableHTTPASGIApp(manager),
    )
    return McpMount(fast, lifespan, server, sessions, extras)
