"""What the gateway knows of each upstream instance between route-table swaps.

Registry health says whether an instance is registered and answering its
probes; this module adds what the gateway sees itself, per request (passive
outlier detection, as Envoy's): consecutive failures open the instance's
circuit, which ejects it for a base time that doubles with each ejection; once
the time is up one trial request is let through (half-open) and its outcome
closes the circuit or ejects the instance again. A success resets the count.

An instance that refuses connections (a stopped process: nothing was sent,
the request went to another instance at once) is ejected for the base time
only, never longer: its trials cost nothing, and once it listens again (a
restart) it is readmitted within ``base_ejection``, however long it was down.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from registry.models import InstanceKey

__all__ = ["BreakerState", "OutlierPolicy", "UpstreamState", "Upstreams"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class OutlierPolicy:
    """When the gateway stops sending to an instance, and when it tries again."""

    #: Consecutive failures (connect errors, 5xx, timeouts) that eject an instance.
    consecutive_failures: int = 3
    #: First ejection time; each further ejection doubles it, up to ``max_ejection``.
    base_ejection: float = 0.5
    max_ejection: float = 30.0
    #: At most this share of a service's instances is ejected at once, so one
    #: bad deploy cannot eject everything (Envoy's max_ejection_percent).
    max_ejected_share: float = 0.5
    #: Concurrent requests one instance may carry (Envoy's max_requests).
    max_in_flight: int = 1024


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True)
class UpstreamState:
    """Mutable per-instance state; the route table holds only immutable facts."""

    in_flight: int = 0
    failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    trial_in_flight: bool = False
    requests: int = 0
    last_used: float = field(default=0.0)

    def state(self, now: float) -> BreakerState:
        if self.ejected_until == 0.0:
            return BreakerState.CLOSED
        if now < self.ejected_until:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN


class Upstreams:
    """States of every instance the gateway has routed to, with the outlier rules."""

    def __init__(
        self, policy: OutlierPolicy | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.policy = policy or OutlierPolicy()
        self._clock = clock
        self._states: dict[InstanceKey, UpstreamState] = {}
        #: Called with (key, ejection seconds) when an instance is ejected.
        self.on_eject: Callable[[InstanceKey, float], None] | None = None

    def get(self, key: InstanceKey) -> UpstreamState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = UpstreamState()
        return state

    def available(self, key: InstanceKey) -> bool:
        """Whether a new request may go to ``key`` now (closed, or a free half-open trial)."""
        state = self._states.get(key)
        if state is None:
            return True
        if state.in_flight >= self.policy.max_in_flight:
            return False
        phase = state.state(self._clock())
        if phase is BreakerState.CLOSED:
            return True
        return phase is BreakerState.HALF_OPEN and not state.trial_in_flight

    def begin(self, key: InstanceKey) -> UpstreamState:
        """Account one request sent to ``key``; pair with :meth:`end`."""
        state = self.get(key)
        state.in_flight += 1
        state.requests += 1
        state.last_used = self._clock()
        if state.state(state.last_used) is BreakerState.HALF_OPEN:
            state.trial_in_flight = True
        return state

    def end(self, key: InstanceKey, *, ok: bool, peers: int = 1, refused: bool = False) -> None:
        """Record the outcome of a request to ``key``.

        ``peers`` is the number of instances of its service, for the cap on
        how many may be ejected at once. ``refused``: the failure was a
        connection the instance refused (nothing sent, no time lost), which
        ejects for ``base_ejection`` without doubling.
        """
        state = self.get(key)
        state.in_flight = max(0, state.in_flight - 1)
        was_trial, state.trial_in_flight = state.trial_in_flight, False
        if ok:
            state.failures = 0
            if state.ejected_until and state.state(self._clock()) is not BreakerState.OPEN:
                state.ejected_until = 0.0
                state.ejections = 0
            return
        state.failures += 1
        # Requests sent before an ejection that fail during it are the same
        # incident, not a failed trial: they do not extend or double it.
        if was_trial or (
            state.failures >= self.policy.consecutive_failures
            and state.state(self._clock()) is not BreakerState.OPEN
        ):
            self._eject(key, state, peers, refused=refused)

    def forget(self, keep: set[InstanceKey]) -> None:
        """Drop the state of instances that left the route table (and are idle)."""
        for key in [k for k, s in self._states.items() if k not in keep and not s.in_flight]:
            del self._states[key]

    def ejected(self, service_keys: list[InstanceKey]) -> int:
        now = self._clock()
        return sum(
            1
            for k in service_keys
            if (s := self._states.get(k)) is not None and s.state(now) is BreakerState.OPEN
        )

    def _eject(
        self, key: InstanceKey, state: UpstreamState, peers: int, *, refused: bool = False
    ) -> None:
        now = self._clock()
        siblings = [k for k in self._states if k[0] == key[0] and k != key]
        if state.state(now) is not BreakerState.OPEN:
            already = self.ejected(siblings)
            if peers > 1 and (already + 1) / peers > self.policy.max_ejected_share:
                return  # keep serving: ejecting would leave too little capacity
        policy = self.policy
        if refused:
            # Doubling would keep a restarted instance out for up to max_ejection
            # to spare trials that cost nothing; the count stays for other failures.
            seconds = min(policy.base_ejection, policy.max_ejection)
        else:
            seconds = min(policy.base_ejection * 2**state.ejections, policy.max_ejection)
            state.ejections += 1
        state.failures = 0
        state.ejected_until = now + seconds
        if self.on_eject is not None:
            self.on_eject(key, seconds)
