from __future__ import annotations

from gateway.upstreams import BreakerState, OutlierPolicy, Upstreams

A = ("svc", "a")
B = ("svc", "b")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(upstreams: Upstreams, key: tuple[str, str], times: int, peers: int = 2) -> None:
    for _ in range(times):
        upstreams.begin(key)
        upstreams.end(key, ok=False, peers=peers)


def test_consecutive_failures_eject_then_a_trial_readmits() -> None:
    clock = Clock()
    ejected: list[float] = []
    upstreams = Upstreams(OutlierPolicy(consecutive_failures=3, base_ejection=0.5), clock=clock)
    upstreams.on_eject = lambda key, seconds: ejected.append(seconds)
    fail(upstreams, A, 2)
    assert upstreams.available(A)
    fail(upstreams, A, 1)
    assert not upstreams.available(A)
    assert ejected == [0.5]
    clock.now += 0.5
    assert upstreams.get(A).state(clock.now) is BreakerState.HALF_OPEN
    assert upstreams.available(A)
    upstreams.begin(A)
    assert not upstreams.available(A)  # one trial at a time
    upstreams.end(A, ok=True, peers=2)
    assert upstreams.get(A).state(clock.now) is BreakerState.CLOSED
    assert upstreams.available(A)


def test_a_failed_trial_doubles_the_ejection() -> None:
    clock = Clock()
    ejected: list[float] = []
    upstreams = Upstreams(OutlierPolicy(consecutive_failures=1, base_ejection=1.0), clock=clock)
    upstreams.on_eject = lambda key, seconds: ejected.append(seconds)
    fail(upstreams, A, 1)
    clock.now += 1.0
    fail(upstreams, A, 1)
    clock.now += 2.0
    fail(upstreams, A, 1)
    assert ejected == [1.0, 2.0, 4.0]


def test_success_resets_the_failure_count() -> None:
    upstreams = Upstreams(OutlierPolicy(consecutive_failures=3), clock=Clock())
    fail(upstreams, A, 2)
    upstreams.begin(A)
    upstreams.end(A, ok=True)
    fail(upstreams, A, 2)
    assert upstreams.available(A)


def test_never_ejects_more_than_the_allowed_share() -> None:
    upstreams = Upstreams(
        OutlierPolicy(consecutive_failures=1, max_ejected_share=0.5), clock=Clock()
    )
    fail(upstreams, A, 1, peers=2)
    fail(upstreams, B, 1, peers=2)
    assert not upstreams.available(A)
    assert upstreams.available(B)  # the last half of the service keeps serving


def test_in_flight_cap_refuses_new_requests() -> None:
    upstreams = Upstreams(OutlierPolicy(max_in_flight=2), clock=Clock())
    upstreams.begin(A)
    upstreams.begin(A)
    assert not upstreams.available(A)
    upstreams.end(A, ok=True)
    assert upstreams.available(A)


def test_forget_drops_idle_instances_that_left() -> None:
    upstreams = Upstreams(clock=Clock())
    upstreams.begin(A)
    upstreams.begin(B)
    upstreams.end(B, ok=True)
    upstreams.forget(keep=set())
    assert upstreams.get(A).in_flight == 1  # busy: kept
    assert upstreams.get(B).requests == 0  # idle: forgotten, a fresh state


def test_refused_trials_do_not_double_the_ejection() -> None:
    # A stopped process refuses connections: trials cost nothing, so it is
    # probed every base_ejection and readmitted that soon after it restarts.
    clock = Clock()
    ejected: list[float] = []
    upstreams = Upstreams(OutlierPolicy(consecutive_failures=1, base_ejection=0.5), clock=clock)
    upstreams.on_eject = lambda key, seconds: ejected.append(seconds)
    fail(upstreams, A, 1)  # the request it was running when it died
    for _ in range(5):
        clock.now += 0.5
        assert upstreams.available(A)
        upstreams.begin(A)
        upstreams.end(A, ok=False, peers=2, refused=True)
    assert ejected == [0.5] * 6
    clock.now += 0.5
    upstreams.begin(A)  # restarted: the trial succeeds
    upstreams.end(A, ok=True, peers=2)
    assert upstreams.get(A).state(clock.now) is BreakerState.CLOSED


def test_a_failed_trial_after_refusals_still_doubles() -> None:
    clock = Clock()
    ejected: list[float] = []
    upstreams = Upstreams(OutlierPolicy(consecutive_failures=1, base_ejection=1.0), clock=clock)
    upstreams.on_eject = lambda key, seconds: ejected.append(seconds)
    fail(upstreams, A, 1)
    clock.now += 1.0
    upstreams.begin(A)
    upstreams.end(A, ok=False, peers=2, refused=True)
    clock.now += 1.0
    fail(upstreams, A, 1)  # reached it and failed: back to doubling
    assert ejected == [1.0, 1.0, 2.0]


def test_failures_of_requests_sent_before_an_ejection_do_not_extend_it() -> None:
    clock = Clock()
    ejected: list[float] = []
    upstreams = Upstreams(OutlierPolicy(consecutive_failures=3, base_ejection=0.5), clock=clock)
    upstreams.on_eject = lambda key, seconds: ejected.append(seconds)
    for _ in range(8):  # eight requests in flight when the instance died
        upstreams.begin(A)
    for _ in range(8):
        upstreams.end(A, ok=False, peers=2)
    assert ejected == [0.5]
    clock.now += 0.5
    assert upstreams.available(A)  # one trial, after the base time
