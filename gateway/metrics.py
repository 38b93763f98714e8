"""Prometheus metrics of one gateway (its own collector registry).

The per-request metrics (requests, latencies, in flight, upstream attempts)
are plain Python numbers read by a collector at scrape time: the client
library's metrics take a lock per operation and ``labels()`` costs
microseconds, and the hot path touches several per request. Children are
cached per label tuple. One event loop updates them; a scrape only reads.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class CounterValue:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class GaugeValue:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def dec(self, amount: int = 1) -> None:
        self.value -= amount


class HistogramValue:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1  # le: inclusive upper bounds
        self.sum += amount


class _Family:
    """One labelled metric: children by label values, exposed by :meth:`collect`."""

    def __init__(
        self,
        kind: str,
        name: str,
        documentation: str,
        labels: Sequence[str],
        registry: CollectorRegistry,
        buckets: Sequence[float] = (),
    ) -> None:
        self._kind = kind
        self._name = name
        self._doc = documentation
        self._labels = list(labels)
        self._bounds = tuple(float(b) for b in buckets)
        self._les = [floatToGoString(b) for b in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._children: dict[tuple[str, ...], Any] = {}
        registry.register(self)

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            if len(labels) != len(self._labels):
                raise ValueError(f"{self._name} takes labels {self._labels}")
            child = self._children[labels] = self._new()
        return child

    def _new(self) -> Any:
        if self._kind == "counter":
            return CounterValue()
        if self._kind == "gauge":
            return GaugeValue()
        return HistogramValue(self._bounds)

    def _family(self) -> Metric:
        if self._kind == "counter":
            return CounterMetricFamily(self._name, self._doc, labels=self._labels)
        if self._kind == "gauge":
            return GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        return HistogramMetricFamily(self._name, self._doc, labels=self._labels)

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family: Any = self._family()
        for labels, child in list(self._children.items()):
            if self._kind == "counter":
                family.add_metric(labels, child.value, created=child.created)
            elif self._kind == "gauge":
                family.add_metric(labels, float(child.value))
            else:
                total, buckets = 0, []
                for le, count in zip(self._les, child.counts, strict=True):
                    total += count
                    buckets.append((le, float(total)))
                family.add_metric(labels, buckets, child.sum)
        yield family


class GatewayMetrics:
    """Requests, upstreams, resilience and route-table metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = _Family(
            "counter",
            "meshgate_gateway_requests",
            "Requests answered by the gateway, by route and status.",
            ["route", "status"],
            r,
        )
        self.latency = _Family(
            "histogram",
            "meshgate_gateway_request_seconds",
            "Time to the end of the answer (streams included), by route.",
            ["route"],
            r,
            _LATENCY_BUCKETS,
        )
        self.in_flight = _Family(
            "gauge",
            "meshgate_gateway_in_flight",
            "Requests being answered, by route.",
            ["route"],
            r,
        )
        self.upstream = _Family(
            "counter",
            "meshgate_gateway_upstream_requests",
            "Attempts sent upstream, by service and outcome.",
            ["service", "outcome"],
            r,
        )
        self.upstream_latency = _Family(
            "histogram",
            "meshgate_gateway_upstream_seconds",
            "Time to an upstream's response head, by service.",
            ["service"],
            r,
            _LATENCY_BUCKETS,
        )
        self.ejections = _Family(
            "counter",
            "meshgate_gateway_ejections",
            "Instances ejected by outlier detection, by service.",
            ["service"],
            r,
        )
        self.retries = _Family(
            "counter",
            "meshgate_gateway_retries",
            "Attempts retried on another instance, by service and reason.",
            ["service", "reason"],
            r,
        )
        self.refused = _Family(
            "counter",
            "meshgate_gateway_refused",
            "Requests refused before routing, by reason.",
            ["reason"],
            r,
        )
        self.mcp_cache_hits = _Family(
            "counter",
            "meshgate_mcp_cache_hits",
            "MCP tool calls answered from the result cache, by tool.",
            ["tool"],
            r,
        )
        self.mcp_cache_misses = _Family(
            "counter",
            "meshgate_mcp_cache_misses",
            "Cacheable MCP tool calls that went upstream, by tool.",
            ["tool"],
            r,
        )
        self.mcp_cache_errors = _Family(
            "counter",
            "meshgate_mcp_cache_errors",
            "Result-cache operations that failed (the call went on uncached).",
            [],
            r,
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
