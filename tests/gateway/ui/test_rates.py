"""Recent rates and latency quantiles from lifetime counters and histograms."""

from __future__ import annotations

import math

import pytest

from gateway.ui.rates import Series, TrafficWindow, quantile

INF = math.inf


def test_quantile_interpolates_within_the_bucket_holding_the_rank() -> None:
    buckets = ((0.01, 0.0), (0.1, 10.0), (1.0, 20.0), (INF, 20.0))
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.25, buckets) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.75, buckets) == pytest.approx(0.1 + 0.9 * 0.5)


def test_quantile_beyond_the_last_finite_bound_is_that_bound() -> None:
    assert quantile(0.99, ((0.1, 1.0), (1.0, 1.0), (INF, 10.0))) == 1.0


def test_quantile_of_no_observations_is_none() -> None:
    assert quantile(0.5, ()) is None
    assert quantile(0.5, ((0.1, 0.0), (INF, 0.0))) is None


def series(count: float, seconds: float) -> Series:
    """``count`` requests, all under 10 ms, taking ``seconds`` in all."""
    return Series(count=count, buckets=((0.01, count), (INF, count)), seconds=seconds)


def test_rates_are_over_the_oldest_kept_sample_and_old_samples_age_out() -> None:
    now = [100.0]
    window = TrafficWindow(10.0, every=1.0, clock=lambda: now[0])
    first, elapsed = window.observe({"echo": series(5, 0.05)})
    assert elapsed == 0.0
    assert first["echo"].rate is None  # nothing to compare with yet
    assert first["echo"].mean == pytest.approx(0.01)  # lifetime, until then
    assert not first["echo"].recent
    now[0] = 102.0
    traffic, elapsed = window.observe({"echo": series(15, 0.07)})
    assert elapsed == 2.0
    assert traffic["echo"].rate == pytest.approx(5.0)
    assert traffic["echo"].total == 15
    assert traffic["echo"].mean == pytest.approx(0.002)  # 0.02 s over the 10 recent ones
    assert traffic["echo"].recent
    now[0] = 120.0  # the sample at 100 is past the window: the one at 102 is the baseline
    traffic, elapsed = window.observe({"echo": series(15, 0.07), "calc": series(2, 0.01)})
    assert elapsed == 18.0
    assert traffic["echo"].rate == 0.0
    # No request in the window: the lifetime latencies, marked as such.
    assert not traffic["echo"].recent
    assert traffic["echo"].mean == pytest.approx(0.07 / 15)
    assert traffic["calc"].rate == pytest.approx(2 / 18)


def test_samples_are_kept_at_most_once_per_interval() -> None:
    now = [0.0]
    window = TrafficWindow(10.0, every=1.0, clock=lambda: now[0])
    window.observe({"echo": series(1, 0.001)})
    now[0] = 0.5
    window.observe({"echo": series(2, 0.002)})  # too soon to keep
    now[0] = 1.0
    traffic, elapsed = window.observe({"echo": series(4, 0.004)})
    assert elapsed == 1.0
    assert traffic["echo"].rate == pytest.approx(3.0)
