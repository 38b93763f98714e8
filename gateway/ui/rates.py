"""Request rates and latency quantiles over a recent window, from the gateway's metrics.

The metrics are lifetime counters and histograms. Each read of the dashboard
keeps a sample of them (at most one a second, for ``window`` seconds) and
reports the difference against the oldest sample it kept: a rate and
quantiles of recent traffic, not of the process's whole life. Quantiles are
interpolated within histogram buckets as Prometheus' ``histogram_quantile``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric

__all__ = ["Series", "Traffic", "TrafficWindow", "quantile", "read_series"]


@dataclass(frozen=True, slots=True)
class Series:
    """One label's lifetime numbers: requests, errors, latency buckets and sum."""

    count: float = 0.0
    errors: float = 0.0
    #: Cumulative counts per upper bound (the last bound is +Inf).
    buckets: tuple[tuple[float, float], ...] = ()
    seconds: float = 0.0

    def minus(self, earlier: Series) -> Series:
        """What happened between ``earlier`` and this series."""
        old = dict(earlier.buckets)
        return Series(
            count=self.count - earlier.count,
            errors=self.errors - earlier.errors,
            buckets=tuple((le, n - old.get(le, 0.0)) for le, n in self.buckets),
            seconds=self.seconds - earlier.seconds,
        )


@dataclass(frozen=True, slots=True)
class Traffic:
    """Recent traffic of one label, as the dashboard shows it."""

    total: int
    errors: int
    rate: float | None
    p50: float | None
    p99: float | None
    mean: float | None
    #: Whether the latencies are of the window, or (no request in it) of the lifetime.
    recent: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "errors": self.errors,
            "rate": _round(self.rate, 3),
            "p50_ms": _ms(self.p50),
            "p99_ms": _ms(self.p99),
            "mean_ms": _ms(self.mean),
            "latency_over": "window" if self.recent else "lifetime",
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets; None if empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bound: that bound is all we know
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


def read_series(
    counters: Iterable[Metric],
    histograms: Iterable[Metric],
    *,
    label: str,
    failed: Callable[[Mapping[str, str]], bool],
) -> dict[str, Series]:
    """Lifetime series by ``label`` from a counter family and a histogram family."""
    counts: dict[str, float] = {}
    errors: dict[str, float] = {}
    for metric in counters:
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            key = sample.labels[label]
            counts[key] = counts.get(key, 0.0) + sample.value
            if failed(sample.labels):
                errors[key] = errors.get(key, 0.0) + sample.value
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    for metric in histograms:
        for sample in metric.samples:
            key = sample.labels[label]
            if sample.name.endswith("_bucket"):
                buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                sums[key] = sample.value
    return {
        key: Series(
            count=counts.get(key, 0.0),
            errors=errors.get(key, 0.0),
            buckets=tuple(sorted(buckets.get(key, ()))),
            seconds=sums.get(key, 0.0),
        )
        for key in counts.keys() | buckets.keys()
    }


def _observed(series: Series | None) -> float:
    return series.buckets[-1][1] if series is not None and series.buckets else 0.0


def _traffic(now: Series, recent: Series | None, elapsed: float) -> Traffic:
    # Latencies of the window; of the lifetime when nothing happened in it (an
    # idle service still shows how fast it was), and the page says which.
    window = recent if recent is not None and _observed(recent) > 0 else now
    latency_count = _observed(window)
    return Traffic(
        total=int(now.count),
        errors=int(now.errors),
        rate=recent.count / elapsed if recent is not None and elapsed > 0 else None,
        p50=quantile(0.5, window.buckets),
        p99=quantile(0.99, window.buckets),
        mean=window.seconds / latency_count if latency_count > 0 else None,
        recent=window is recent,
    )


class TrafficWindow:
    """Samples of lifetime series, kept ``window`` seconds, for recent rates and quantiles."""

    def __init__(
        self,
        window: float = 30.0,
        *,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.every = every
        self._clock = clock
        self._samples: deque[tuple[float, Mapping[str, Series]]] = deque()

    def observe(self, series: Mapping[str, Series]) -> tuple[dict[str, Traffic], float]:
        """Traffic by label since the oldest kept sample, and that sample's age in seconds.

        Before a first earlier sample exists, rates are None; latencies are over
        the lifetime series until a request falls in the window.
        """
        now = self._clock()
        samples = self._samples
        while len(samples) > 1 and now - samples[1][0] >= self.window:
            samples.popleft()  # keep the newest sample at least a window old as the baseline
        baseline = samples[0] if samples else None
        if not samples or now - samples[-1][0] >= self.every:
            samples.append((now, series))
        elapsed = now - baseline[0] if baseline is not None else 0.0
        out: dict[str, Traffic] = {}
        for key, current in series.items():
            recent = None
            if baseline is not None and elapsed > 0:
                recent = current.minus(baseline[1].get(key, Series()))
            out[key] = _traffic(current, recent, elapsed)
        return out, elapsed
