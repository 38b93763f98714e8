"""Prometheus metrics of one gateway (its own collector registry).

Label children are cached per label tuple: ``labels()`` costs microseconds,
and the hot path touches several metrics per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class _Family:
    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


class GatewayMetrics:
    """Requests, upstreams, resilience and route-table metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = _Family(
            Counter(
                "meshgate_gateway_requests",
                "Requests answered by the gateway, by route and status.",
                ["route", "status"],
                registry=r,
            )
        )
        self.latency = _Family(
            Histogram(
                "meshgate_gateway_request_seconds",
                "Time to the end of the answer (streams included), by route.",
                ["route"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.in_flight = _Family(
            Gauge(
                "meshgate_gateway_in_flight",
                "Requests being answered, by route.",
                ["route"],
                registry=r,
            )
        )
        self.upstream = _Family(
            Counter(
                "meshgate_gateway_upstream_requests",
                "Attempts sent upstream, by service and outcome.",
                ["service", "outcome"],
                registry=r,
            )
        )
        self.upstream_latency = _Family(
            Histogram(
                "meshgate_gateway_upstream_seconds",
                "Time to an upstream's response head, by service.",
                ["service"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.ejections = _Family(
            Counter(
                "meshgate_gateway_ejections",
                "Instances ejected by outlier detection, by service.",
                ["service"],
                registry=r,
            )
        )
        self.retries = _Family(
            Counter(
                "meshgate_gateway_retries",
                "Attempts retried on another instance, by service and reason.",
                ["service", "reason"],
                registry=r,
            )
        )
        self.refused = _Family(
            Counter(
                "meshgate_gateway_refused",
                "Requests refused before routing, by reason.",
                ["reason"],
                registry=r,
            )
        )
        self.queue_depth = Gauge(
            "meshgate_gateway_queue_depth", "Requests waiting for admission.", registry=r
        )
        self.table_age = Gauge(
            "meshgate_gateway_route_table_age_seconds",
            "Seconds since the registry last answered (0 while it answers).",
            registry=r,
        )
        self.table_stale = Gauge(
            "meshgate_gateway_route_table_stale",
            "1 while the registry cannot be reached and the last table serves.",
            registry=r,
        )
        self.table_index = Gauge(
            "meshgate_gateway_route_table_index", "Registry index of the route table.", registry=r
        )
        self.table_instances = Gauge(
            "meshgate_gateway_route_table_instances",
            "Instances in the route table, by routability.",
            ["routable"],
            registry=r,
        )

    def follow(self, staleness: Callable[[], float], stale: Callable[[], bool]) -> None:
        """Read the route table's age and staleness at scrape time."""
        self.table_age.set_function(staleness)
        self.table_stale.set_function(lambda: 1.0 if stale() else 0.0)
