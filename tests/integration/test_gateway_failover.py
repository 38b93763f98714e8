"""Failover through the gateway, with real processes on loopback (issue 4).

Two replicas of the summarizer (instances ``summarizer-a`` and
``summarizer-b`` of one service) serve behind ``meshgate gateway``, and
``meshgate registry`` (memory backend) knows them. Under steady load replica
A is killed with SIGKILL:

* only the requests A was running when it died may fail, with a 502 that
  says so; every request sent after its death succeeds (an attempt that
  cannot reach A is retried on B);
* the gateway sends at most three new requests to the dead A before ejecting
  it; after that only half-open trials (connection refused, retried on B);
* restarted on the same port with the same instance name, A receives traffic
  again within 2 s of answering ``/readyz``.

Which replica ran a request is read from the replicas' own task stores (a
task lives where it ran); the gateway's attempts and ejections from its
``/metrics``. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest

from tests.support.failover import (
    Outcome,
    Samples,
    SteadyLoad,
    metric,
    scrape,
    task_owners,
    wait_ready,
)
from tests.support.live import free_port
from tests.support.processes import MeshProcess, processes

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

SERVICE = "summarizer"
A, B = "summarizer-a", "summarizer-b"
SKILL_RUNS = "meshgate_agent_skill_runs_total"
ATTEMPTS = "meshgate_gateway_upstream_requests_total"
RETRIES = "meshgate_gateway_retries_total"
EJECTIONS = "meshgate_gateway_ejections_total"
ROUTABLE = "meshgate_gateway_route_table_instances"
#: Issue 4: the dead replica stops receiving traffic after at most this many failures.
MAX_FAILURES = 3
#: Issue 4: a restarted replica receives traffic within this many seconds of being ready.
REJOIN_WITHIN = 2.0
#: The gateway's OutlierPolicy.base_ejection (its default).
BASE_EJECTION = 0.5


@dataclass(frozen=True)
class Counters:
    """The gateway's counters for the summarizer at one moment.

    B never fails in this test, so every failed attempt was one at A.
    """

    failed: float
    #: Attempts that never reached an instance (connection refused) and were retried.
    unreached: float
    ejections: float

    @classmethod
    def of(cls, samples: Samples) -> Counters:
        return cls(
            failed=sum(
                metric(samples, ATTEMPTS, service=SERVICE, outcome=outcome)
                for outcome in ("error", "timeout", "5xx")
            ),
            unreached=metric(samples, RETRIES, service=SERVICE, reason="unreached"),
            ejections=metric(samples, EJECTIONS, service=SERVICE),
        )

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.failed - other.failed,
            self.unreached - other.unreached,
            self.ejections - other.ejections,
        )


async def _until(
    what: str, check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.01
) -> float:
    """Poll ``check`` until it holds; return the time it did."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await anyio.sleep(interval)
    return time.monotonic()


def _ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


async def test_a_killed_replica_is_ejected_without_client_failures_and_rejoins(
    tmp_path: Path,
) -> None:
    registry_port, port_a, port_b, gateway_port = _ports(4)
    registry_url = f"http://127.0.0.1:{registry_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    tasks = tmp_path / "tasks"

    def replica(instance: str, port: int, log: str) -> MeshProcess:
        args = [
            *("agent", SERVICE, "--port", str(port), "--instance", instance),
            *("--data", str(tasks), "--registry", registry_url),
        ]
        return MeshProcess(log, args, f"http://127.0.0.1:{port}", tmp_path)

    async def gateway_counters() -> Counters:
        return Counters.of(await scrape(monitor, gateway_url))

    async def runs(proc: MeshProcess) -> float:
        return metric(await scrape(monitor, proc.url), SKILL_RUNS)

    monitor = httpx.AsyncClient(timeout=2, trust_env=False)
    sender = httpx.AsyncClient(
        timeout=15,
        trust_env=False,
        headers={"A2A-Version": "1.0"},
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
    )
    load = SteadyLoad(sender, f"{gateway_url}/a2a/{SERVICE}/", concurrency=8, max_seconds=25)
    async with monitor, sender:
        with processes() as started:
            registry = MeshProcess(
                "registry",
                [
                    *("registry", "--port", str(registry_port), "--backend", "memory"),
                    *("--allow-cidr", "127.0.0.0/8"),
                ],
                registry_url,
                tmp_path,
            )
            started.append(registry)
            await wait_ready(monitor, registry)
            a, b = replica(A, port_a, A), replica(B, port_b, B)
            gateway = MeshProcess(
                "gateway",
                ["gateway", "--port", str(gateway_port), "--registry", registry_url],
                gateway_url,
                tmp_path,
            )
            started += [a, b, gateway]
            for proc in (a, b, gateway):
                await wait_ready(monitor, proc)

            async def both_routable() -> bool:
                samples = await scrape(monitor, gateway_url)
                return metric(samples, ROUTABLE, routable="true") >= 2

            await _until("both replicas routable at the gateway", both_routable, within=15)

            async with anyio.create_task_group() as tg:
                tg.start_soon(load.run)

                async def both_serving() -> bool:
                    return len(load.done) >= 200 and min([await runs(a), await runs(b)]) >= 20

                await _until("load on both replicas", both_serving, within=10)

                # -- kill A mid-load ---------------------------------------------
                before = await gateway_counters()
                killed = time.monotonic()
                os.kill(a.proc.pid, signal.SIGKILL)
                await anyio.to_thread.run_sync(a.proc.wait)
                dead = time.monotonic()  # reaped: every socket of A is closed

                at_ejection = before

                async def ejected() -> bool:
                    nonlocal at_ejection
                    at_ejection = await gateway_counters()
                    return at_ejection.ejections > before.ejections

                ejected_at = await _until("A ejected", ejected, within=5, interval=0.005)

                async def served_by_b_alone() -> bool:
                    return len(load.since(dead)) >= 150

                await _until("load served by B alone", served_by_b_alone, within=10)

                # -- restart A: same port, same instance --------------------------
                down = await gateway_counters()
                restarted = time.monotonic()
                a_again = replica(A, port_a, f"{A}-restarted")
                started.append(a_again)
                ready = await wait_ready(monitor, a_again)

                async def a_serving() -> bool:
                    return await runs(a_again) > 0

                rejoined = await _until("A back in rotation", a_serving, within=10)

                async def a_loaded() -> bool:
                    return await runs(a_again) >= 20

                await _until("A carrying load again", a_loaded, within=5)
                back = await gateway_counters()
                load.stop()

        owners = task_owners({name: tasks / f"{name}.db" for name in (A, B)})

    outcomes = load.done
    failures = [o for o in outcomes if not o.ok]
    after_death = load.since(dead)
    first = at_ejection - before
    while_down = down - before
    trials = while_down.ejections - 1  # every later ejection is one failed half-open trial
    figures = {
        "requests": len(outcomes),
        "served by": {n: sum(owners.get(o.task_id or "") == n for o in outcomes) for n in (A, B)},
        "failures": len(failures),
        "failures why": sorted({f"{o.status} {o.error}" for o in failures}),
        "sent after death / failed": (len(after_death), sum(not o.ok for o in after_death)),
        "latency ms p50/p99/max": _percentiles(outcomes),
        "kill to ejection seen s": round(ejected_at - killed, 3),
        "failed attempts at A when ejected (incl. in flight)": first.failed,
        "new attempts to dead A before ejection": first.unreached,
        "failed attempts to A while down": while_down.failed,
        "half-open trials while down (refused, retried)": trials,
        "A down, kill to ready s": round(ready - killed, 3),
        "restart to ready s": round(ready - restarted, 3),
        "refused trials while restarting": (back - down).unreached,
        "ready to first request on A s": round(rejoined - ready, 3),
    }
    print("\nfailover figures:", figures)
    events = {"killed": killed, "dead": dead, "ejected": ejected_at, "restarted": restarted}
    events |= {"ready": ready, "rejoined": rejoined}
    (tmp_path / "outcomes.json").write_text(
        json.dumps({"events": events, "outcomes": [asdict(o) for o in outcomes]})
    )

    # Only the requests A was running when it died failed, with a 502/504 saying so.
    assert len(failures) <= load.concurrency, figures
    for outcome in failures:
        assert outcome.started < dead, outcome
        assert outcome.ended >= killed, outcome
        assert outcome.status in (502, 504), outcome
        assert SERVICE in (outcome.error or ""), outcome
    # Every request sent after A died succeeded, and none of them ran on A
    # before it was restarted.
    assert after_death, figures
    assert all(o.ok for o in after_death), figures
    assert not [
        o for o in after_death if o.started < restarted and owners.get(o.task_id or "") == A
    ]
    # The dead A got at most three new requests before its ejection (the
    # requests it was running failed too, and count towards the three), then
    # only half-open trials, at most one per base ejection time (0.5 s), each
    # refused and retried on B.
    assert first.unreached <= MAX_FAILURES, figures
    assert while_down.unreached - trials <= MAX_FAILURES, figures
    periods = (restarted - ejected_at) / BASE_EJECTION
    assert while_down.unreached - first.unreached <= periods + 1, figures
    # Back in rotation within 2 s of answering /readyz.
    assert rejoined - ready <= REJOIN_WITHIN, figures
    assert all(owners.get(o.task_id or "") in (A, B) for o in outcomes if o.ok)


def _percentiles(outcomes: list[Outcome]) -> tuple[float, float, float]:
    latencies = sorted(o.latency for o in outcomes)
    if not latencies:
        return (0.0, 0.0, 0.0)

    def at(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return (at(0.5), at(0.99), at(1.0))
