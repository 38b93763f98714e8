"""``tools/list`` answers built once per route table (and policy rule), for both eras.

The SDK server shapes each ``tools/list`` answer from the tool models on every
call: three passes over every tool (dump, validate against the version's
surface, dump again), ~3-6 ms of CPU for 250 tools. The answer changes only
when the route table does, so :class:`ToolLists` shapes it once per catalog,
protocol version and policy rule, with the SDK's own functions (cache hint,
surface sieve, ``serverInfo`` stamp), and serves it:

* as bytes to the raw fast path (stateless 2026-07-28 requests), and
* as a server middleware answering handshake-era ``tools/list`` in sessions,
  after the SDK's initialization gate and for plain requests only (anything
  with a cursor or other parameters goes through the SDK handler as before).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.caching import CacheHint, apply_cache_hint
from mcp.server.context import CallNext, HandlerResult
from mcp_types.methods import serialize_server_result
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.mcp.catalog import Catalog
from gateway.mcp.policy import ToolPolicy, ToolRule, request_principal
from gateway.security.settings import Principal

__all__ = ["ToolLists"]


class ToolLists:
    """The shaped ``tools/list`` results of the current catalog."""

    def __init__(
        self,
        server: Server[Any],
        catalog: Callable[[], Catalog],
        hint: CacheHint,
        policy: ToolPolicy | None,
    ) -> None:
        self._server = server
        self._catalog = catalog
        self._hint = hint
        self._policy = policy
        self._of: Catalog | None = None
        self._results: dict[tuple[str, ToolRule | None], dict[str, Any]] = {}
        self._wire: dict[tuple[str, ToolRule | None], bytes] = {}

    def result(self, version: str, principal: Principal | None) -> dict[str, Any]:
        """The result object as the SDK server shapes it for ``version`` (shared: do not change)."""
        catalog = self._catalog()
        if catalog is not self._of:
            self._of, self._results, self._wire = catalog, {}, {}
        rule = None if self._policy is None else self._policy.rule_for(principal)
        shaped = self._results.get((version, rule))
        if shaped is None:
            tools = list(catalog.tools)
            if rule is not None:
                tools = [tool for tool in tools if rule.allows(tool.name)]
            listed = apply_cache_hint(types.ListToolsResult(tools=tools), self._hint)
            dumped = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
            shaped = serialize_server_result("tools/list", version, dumped)
            if version in MODERN_PROTOCOL_VERSIONS:
                shaped["_meta"] = {types.SERVER_INFO_META_KEY: self._server.server_info_stamp}
            self._results[(version, rule)] = shaped
        return shaped

    def wire(self, version: str, principal: Principal | None) -> bytes:
        """:meth:`result` as compact JSON."""
        shaped = self.result(version, principal)  # first: it drops an old catalog's bytes
        key = (version, None if self._policy is None else self._policy.rule_for(principal))
        built = self._wire.get(key)
        if built is None:
            built = json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).encode()
            self._wire[key] = built
        return built

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Server middleware: a session's plain ``tools/list`` from the shaped results."""
        version = ctx.protocol_version
        if (
            ctx.method != "tools/list"
            or version in MODERN_PROTOCOL_VERSIONS
            or not _plain(ctx.params)
            or not _initialized(ctx)
        ):
            return await call_next(ctx)
        return dict(self.result(version, request_principal(ctx.request)))


def _plain(params: Any) -> bool:
    """No parameters but ``_meta``: nothing the SDK handler would validate or act on."""
    if params is None:
        return True
    if not isinstance(params, dict) or set(params) - {"_meta"}:
        return False
    return isinstance(params.get("_meta", {}), dict)


def _initialized(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether the SDK's gate lets ``tools/list`` through (it answers itself otherwise)."""
    # mcp 2.3 has no public handle on the connection of a request (as in server.Sessions).
    connection = getattr(ctx.session, "_connection", None)
    return bool(getattr(connection, "initialize_accepted", False))
