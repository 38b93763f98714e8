"""Prometheus metrics of one registry service (its own collector registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from registry.models import Health, Instance, Kind

__all__ = ["RegistryMetrics"]


class RegistryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "meshgate_registry_requests",
            "HTTP requests answered by the registry.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "meshgate_registry_request_seconds",
            "Time to answer a registry request (blocking queries not included).",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
        )
        self.instances = Gauge(
            "meshgate_registry_instances",
            "Registered instances by kind and health.",
            ["kind", "health"],
            registry=self.registry,
        )
        self.index = Gauge(
            "meshgate_registry_index",
            "The registry's current change index.",
            registry=self.registry,
        )
        self.store_staleness = Gauge(
            "meshgate_registry_store_stale_seconds",
            "Seconds reads have been served from the last known state (store unreachable).",
            registry=self.registry,
        )
        self.probes = Counter(
            "meshgate_registry_probes",
            "Active protocol probes by kind and result.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.probe_latency = Histogram(
            "meshgate_registry_probe_seconds",
            "Duration of active protocol probes.",
            ["kind"],
            registry=self.registry,
        )

    def observe_catalogue(self, index: int, instances: list[Instance]) -> None:
        """Refresh the instance gauges from a catalogue snapshot."""
        self.index.set(index)
        counts = dict.fromkeys(((k, h) for k in Kind for h in Health), 0)
        for instance in instances:
            counts[(instance.kind, instance.health)] += 1
        for (kind, health), n in counts.items():
            self.instances.labels(kind=kind.value, health=health.value).set(n)
