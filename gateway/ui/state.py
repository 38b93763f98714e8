"""The dashboard's JSON: the route table, the gateway's view of each instance, traffic, traces.

Built on demand (each poll of ``/ui/state.json``) from what the gateway already
holds: nothing here runs per proxied request. Services come from the route
table, each instance with its registry health and whether the gateway's own
outlier detection has ejected it; traffic from the metrics (through a
:class:`~gateway.ui.rates.TrafficWindow`); traces from the forwarder's ring
buffer of finished exchanges.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.forwarding import Finished
from gateway.metrics import GatewayMetrics
from gateway.table import Route, RouteTable
from gateway.ui.rates import TrafficWindow, read_series
from gateway.upstreams import Upstreams
from registry.models import Health, Kind

__all__ = ["MeshView", "UiState", "trace_id"]

#: Most recent exchanges the page lists.
MAX_TRACES = 50


@dataclass(frozen=True)
class MeshView:
    """What the dashboard reads from a running gateway at one moment."""

    table: RouteTable
    upstreams: Upstreams
    metrics: GatewayMetrics
    finished: Iterable[Finished]
    stale: bool = False
    staleness: float = 0.0
    version: str = ""


def trace_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The trace id of a W3C ``traceparent`` among ``headers``, if a valid one is there."""
    for name, value in headers:
        if name.lower() == b"traceparent":
            parts = value.decode("latin-1").strip().split("-")
            if len(parts) >= 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
                try:
                    int(parts[1], 16)
                except ValueError:
                    return None
                return parts[1].lower()
            return None
    return None


class UiState:
    """Builds the state document; keeps the traffic samples between polls."""

    def __init__(self, traffic: TrafficWindow | None = None) -> None:
        self._routes = traffic or TrafficWindow()
        self._services = TrafficWindow(self._routes.window, every=self._routes.every)

    def build(self, view: MeshView) -> dict[str, Any]:
        services = [_service(name, routes, view.upstreams) for name, routes in _sorted(view.table)]
        instances = [i for s in services for i in s["instances"]]
        metrics = view.metrics
        route_series = read_series(
            metrics.requests.collect(),
            metrics.latency.collect(),
            label="route",
            failed=lambda labels: labels["status"].startswith("5"),
        )
        upstream_series = read_series(
            metrics.upstream.collect(),
            metrics.upstream_latency.collect(),
            label="service",
            failed=lambda labels: labels["outcome"] != "ok",
        )
        routes, window = self._routes.observe(route_series)
        upstream, _ = self._services.observe(upstream_series)
        in_flight = _gauges(metrics)
        return {
            "now": time.time(),
            "gateway": {
                "version": view.version,
                "table_index": view.table.index,
                "loaded": view.table.loaded,
                "stale": view.stale,
                "staleness_seconds": round(view.staleness, 1),
            },
            "summary": {
                "services": len(services),
                "agents": sum(s["kind"] == Kind.A2A_AGENT for s in services),
                "tool_servers": sum(s["kind"] == Kind.MCP_SERVER for s in services),
                "instances": len(instances),
                "healthy": sum(i["state"] in ("passing", "warning") for i in instances),
                "tools": sum(len(s["tools"]) for s in services),
            },
            "services": services,
            "window_seconds": round(window, 3),
            "routes": [
                {"route": name, "in_flight": in_flight.get(name, 0), **traffic.as_json()}
                for name, traffic in sorted(routes.items())
            ],
            "upstreams": [
                {"service": name, **traffic.as_json()} for name, traffic in sorted(upstream.items())
            ],
            "traces": _traces(view.finished),
        }


def _sorted(table: RouteTable) -> list[tuple[str, tuple[Route, ...]]]:
    # Agents first, then tool servers; by name within each.
    return sorted(
        table.services.items(), key=lambda item: (item[1][0].kind != Kind.A2A_AGENT, item[0])
    )


def _service(name: str, routes: tuple[Route, ...], upstreams: Upstreams) -> dict[str, Any]:
    kind = routes[0].kind
    card: Mapping[str, Any] = next((r.card for r in routes if r.card), {})
    tools = sorted({str(t.get("name", "")) for r in routes for t in r.tools} - {""})
    instances = [_instance(route, upstreams) for route in sorted(routes, key=lambda r: r.key)]
    return {
        "name": name,
        "kind": str(kind),
        "description": str(card.get("description", "")),
        "version": str(card.get("version", "")),
        "skills": _skills(card),
        "tools": tools,
        "instances": instances,
        "healthy": sum(i["state"] in ("passing", "warning") for i in instances),
    }


def _skills(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for skill in card.get("skills") or ():
        if isinstance(skill, Mapping):
            tags = skill.get("tags")
            out.append(
                {
                    "id": str(skill.get("id", "")),
                    "name": str(skill.get("name") or skill.get("id", "")),
                    "description": str(skill.get("description", "")),
                    "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
                }
            )
    return out


def _instance(route: Route, upstreams: Upstreams) -> dict[str, Any]:
    state = upstreams.get(route.key)
    # Not closed: ejected, or out until a trial request succeeds.
    ejected = state.ejected_until != 0.0
    shown = str(route.health)
    if route.health is not Health.CRITICAL and ejected:
        shown = "ejected"
    return {
        "id": route.key[1],
        "url": route.base_url,
        "health": str(route.health),
        "ejected": ejected,
        "state": shown,
        "in_flight": state.in_flight,
        "requests": state.requests,
    }


def _gauges(metrics: GatewayMetrics) -> dict[str, int]:
    out: dict[str, int] = {}
    for metric in metrics.in_flight.collect():
        for sample in metric.samples:
            out[sample.labels["route"]] = int(sample.value)
    return out


def _traces(finished: Iterable[Finished]) -> list[dict[str, Any]]:
    wall, clock = time.time(), time.perf_counter()
    recent = list(finished)[-MAX_TRACES:]
    return [
        {
            "time": round(wall - (clock - ended), 3),
            "service": route.service,
            "instance": route.key[1],
            "kind": str(route.kind),
            "status": status,
            "duration_ms": round((ended - started) * 1000, 2),
            "trace_id": trace_id(headers),
        }
        for started, ended, route, status, headers in reversed(recent)
    ]
