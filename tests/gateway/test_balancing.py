"""One contract over every balancing strategy, then what each one promises."""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass

import pytest

from gateway.balancing import BALANCERS, Balancer, LeastInFlight, create_balancer
from registry.models import Health, InstanceKey


@dataclass
class Fake:
    key: InstanceKey
    health: Health = Health.PASSING


def instances(n: int, **kw: object) -> list[Fake]:
    return [Fake(("svc", f"i-{i}"), **kw) for i in range(n)]  # type: ignore[arg-type]


@pytest.fixture(params=sorted(BALANCERS))
def balancer(request: pytest.FixtureRequest) -> Balancer:
    return create_balancer(request.param)


def test_every_strategy_picks_one_of_the_candidates(balancer: Balancer) -> None:
    pool = instances(5)
    for _ in range(200):
        assert balancer.pick("svc", pool) in pool


def test_every_strategy_uses_a_lone_candidate(balancer: Balancer) -> None:
    only = instances(1)
    assert all(balancer.pick("svc", only) is only[0] for _ in range(10))


def test_every_strategy_spreads_equal_instances(balancer: Balancer) -> None:
    pool = instances(4)
    counts = collections.Counter(balancer.pick("svc", pool).key for _ in range(4000))
    assert set(counts) == {p.key for p in pool}
    assert min(counts.values()) > 4000 / 4 * 0.8


def test_every_strategy_follows_a_changing_pool(balancer: Balancer) -> None:
    pool = instances(3)
    for _ in range(10):
        balancer.pick("svc", pool)
    smaller = pool[1:]
    assert all(balancer.pick("svc", smaller) in smaller for _ in range(50))


def test_round_robin_takes_turns() -> None:
    balancer = create_balancer("round_robin")
    pool = instances(3)
    picks = [balancer.pick("svc", pool).key for _ in range(6)]
    assert picks[:3] == picks[3:]
    assert len(set(picks[:3])) == 3


def test_least_inflight_prefers_the_less_loaded() -> None:
    balancer = LeastInFlight(random.Random(7))
    busy, idle = Fake(("svc", "busy")), Fake(("svc", "idle"))
    load = {busy.key: 10, idle.key: 0}
    assert all(balancer.pick("svc", [busy, idle], load.__getitem__) is idle for _ in range(50))


def test_weighted_sends_warning_instances_a_quarter_share() -> None:
    balancer = create_balancer("weighted")
    good, tired = Fake(("svc", "good")), Fake(("svc", "tired"), health=Health.WARNING)
    counts = collections.Counter(balancer.pick("svc", [good, tired]).key for _ in range(500))
    assert counts[("svc", "tired")] == 100  # smooth WRR is exact: 1 of every 5


def test_unknown_strategy_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="least_inflight"):
        create_balancer("random")
