"""``python -m tests.chaos [--rounds N]`` (``make chaos``): the long chaos run,
on the sqlite registry and on Consul (the double), each printed as a table."""

from __future__ import annotations

import argparse
import contextlib
import functools
import tempfile
from collections.abc import Iterator
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
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep each run's process logs, task stores and failed requests here",
    )
    args = parser.parse_args()
    backends = ("sqlite", "consul") if args.backend == "both" else (args.backend,)
    failed = False
    for backend in backends:
        plan = [step for _ in range(args.rounds) for step in faults()]
        with _logs(args.keep, backend) as logs:
            settings = MeshSettings(backend=backend)
            report = anyio.run(
                functools.partial(
                    run_chaos, settings, plan, Path(logs), concurrency=args.concurrency
                )
            )
        print(report.table(), flush=True)
        failed |= bool(report.violations)
    raise SystemExit(1 if failed else 0)


@contextlib.contextmanager
def _logs(keep: Path | None, backend: str) -> Iterator[str]:
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="meshgate-chaos-") as logs:
            yield logs
        return
    kept = keep / backend
    kept.mkdir(parents=True, exist_ok=False)
    yield str(kept)


if __name__ == "__main__":
    main()
