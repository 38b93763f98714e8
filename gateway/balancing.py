"""Load-balancing strategies, chosen by a short name.

Every strategy picks one of the candidates the router hands it: instances of
the target that the registry reports passing or warning and that the outlier
rules admit. Strategies only order the choice; they never see ejected
instances.
"""

from __future__ import annotations

import abc
import itertools
import random
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol, TypeVar

from registry.models import Health, InstanceKey

__all__ = [
    "BALANCERS",
    "Balancer",
    "Candidate",
    "LeastInFlight",
    "Load",
    "RoundRobin",
    "Weighted",
    "create_balancer",
]


class Candidate(Protocol):
    """What a strategy may look at of an instance: identity and registry health."""

    @property
    def key(self) -> InstanceKey: ...

    @property
    def health(self) -> Health: ...


#: Current requests in flight to an instance (the gateway's own count).
Load = Callable[[InstanceKey], int]
C = TypeVar("C", bound=Candidate)


def _no_load(key: InstanceKey) -> int:
    return 0


class Balancer(abc.ABC):
    """Picks an instance for one request."""

    name: ClassVar[str]

    @abc.abstractmethod
    def pick(self, target: str, candidates: Sequence[C], load: Load = _no_load) -> C:
        """One of ``candidates`` (never empty) for a request to ``target``."""


class RoundRobin(Balancer):
    """Each instance in turn, per target."""

    name = "round_robin"

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def pick(self, target: str, candidates: Sequence[C], load: Load = _no_load) -> C:
        counter = self._counters.get(target)
        if counter is None:
            counter = self._counters[target] = itertools.count(random.randrange(1 << 16))  # noqa: S311
        return candidates[next(counter) % len(candidates)]


class LeastInFlight(Balancer):
    """Power of two choices: of two instances drawn at random, the less loaded.

    Nearly as good as scanning for the least loaded instance, without herding
    every gateway replica onto the same one.
    """

    name = "least_inflight"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - not security

    def pick(self, target: str, candidates: Sequence[C], load: Load = _no_load) -> C:
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._rng.sample(range(len(candidates)), 2)
        first, second = candidates[a], candidates[b]
        return first if load(first.key) <= load(second.key) else second


class Weighted(Balancer):
    """Smooth weighted round robin (nginx's), weights from registry health.

    A ``warning`` instance gets a quarter of a ``passing`` one's share: still
    used, so it can recover, but spared most of the load.
    """

    name = "weighted"
    WEIGHTS: ClassVar[dict[Health, int]] = {Health.PASSING: 4, Health.WARNING: 1}

    def __init__(self) -> None:
        self._current: dict[str, dict[InstanceKey, int]] = {}

    def pick(self, target: str, candidates: Sequence[C], load: Load = _no_load) -> C:
        current = self._current.setdefault(target, {})
        keys = {c.key for c in candidates}
        for stale in [k for k in current if k not in keys]:
            del current[stale]
        total, best, best_score = 0, candidates[0], None
        for candidate in candidates:
            weight = self.WEIGHTS.get(candidate.health, 0)
            total += weight
            score = current.get(candidate.key, 0) + weight
            current[candidate.key] = score
            if best_score is None or score > best_score:
                best, best_score = candidate, score
        current[best.key] -= total
        return best


BALANCERS: dict[str, type[Balancer]] = {
    cls.name: cls for cls in (RoundRobin, LeastInFlight, Weighted)
}


def create_balancer(name: str) -> Balancer:
    """The strategy called ``name`` (``round_robin``, ``least_inflight``, ``weighted``)."""
    try:
        return BALANCERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown balancing strategy {name!r}: use one of {sorted(BALANCERS)}"
        ) from None
