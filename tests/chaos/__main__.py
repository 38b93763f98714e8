"""``python -m tests.chaos [--rounds N]`` (``make chaos``): the long chaos run,
on the sqlite registry and on Consul (the double), each printed as a table."""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import anyio

from tests.chaos.mesh import MeshSettings
from tests.chaos.nemesis import faults
from tests.chaos.run import run_chaos


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every fault")
    parser.add_argument("--backend", choices=("sqlite", "consul", "both"), default="both")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    backends = ("sqlite", "consul") if args.backend == "both" else (args.backend,)
    failed = False
    for backend in backends:
        plan = [step for _ in range(args.rounds) for step in faults()]
        with tempfile.TemporaryDirectory(prefix="meshgate-chaos-") as logs:
            settings = MeshSettings(backend=backend)
            report = anyio.run(
                functools.partial(
                    run_chaos, settings, plan, Path(logs), concurrency=args.concurrency
                )
            )
        print(report.table(), flush=True)
        failed |= bool(report.violations)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
