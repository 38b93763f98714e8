"""Agent Cards as the gateway serves them: interfaces pointing at the gateway."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from gateway.table import RouteTable

__all__ = ["CardCache", "rewrite_card"]

_JSONRPC = "JSONRPC"


def rewrite_card(card: Mapping[str, Any], base: str) -> dict[str, Any]:
    """``card`` with every interface URL on the gateway route ``base`` (no trailing slash).

    JSON-RPC is served at ``base/`` (clients POST to that URL exactly), the
    HTTP+JSON binding at ``base``. Signatures are dropped: they covered the
    agent's own URLs, and a card with rewritten URLs would not verify.
    """
    rewritten = copy.deepcopy(dict(card))
    rewritten.pop("signatures", None)
    interfaces = []
    for interface in rewritten.get("supportedInterfaces") or []:
        if not isinstance(interface, dict):
            continue
        binding = interface.get("protocolBinding")
        if binding not in (_JSONRPC, "HTTP+JSON"):
            continue  # gRPC and others are not routed by this gateway
        url = f"{base}/" if binding == _JSONRPC else base
        interfaces.append({**interface, "url": url})
    rewritten["supportedInterfaces"] = interfaces
    return rewritten


class CardCache:
    """Rewritten cards rendered once per route-table index and public base."""

    def __init__(self) -> None:
        self._index = -1
        self._cards: dict[tuple[str, str], bytes] = {}

    def get(self, table: RouteTable, route: str, service: str, base: str) -> bytes | None:
        """JSON of the card of ``service`` served at ``base``, or ``None`` if unknown."""
        if table.index != self._index:
            self._cards.clear()
            self._index = table.index
        key = (route, base)
        body = self._cards.get(key)
        if body is None:
            card = table.card(service)
            if card is None:
                return None
            body = json.dumps(rewrite_card(card, base), separators=(",", ":")).encode()
            if len(self._cards) < 4096:
                self._cards[key] = body
        return body
