"""One change, measured: this tree's gateway against another commit's, in one run.

    .venv/bin/python bench/gateway_ab.py --baseline HEAD~1          # one core, c=64
    .venv/bin/python bench/gateway_ab.py --baseline main --rounds 16 --seconds 2
    .venv/bin/python bench/gateway_ab.py --baseline HEAD --two-cores  # no pinning

Both gateways route the same registry to the same trivial upstream (the one
``bench/gateway.py`` uses); the baseline runs from a ``git worktree`` of
``--baseline`` made for the run and removed after it. Each round drives the
upstream directly, gateway A (this tree) and gateway B (the baseline) with
wrk, one after another in a rotating order, so that the machine's drift
(these VMs are shared) falls on both sides alike. Printed: each round's
req/s and CPU per request, the medians, A/direct, B/direct, and A/B per round
with its median, the figure to quote for a change. Prints only; writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/gateway.py shares its name with the gateway package: load it under another.
_spec = importlib.util.spec_from_file_location("bench_gateway", ROOT / "bench" / "gateway.py")
assert _spec is not None
assert _spec.loader is not None
bg = importlib.util.module_from_spec(_spec)
sys.modules["bench_gateway"] = bg
_spec.loader.exec_module(bg)

PATH = "/a2a/bench-trivial/"


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached checkout of ``rev`` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), rev],
            check=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )


def start_gateway(name: str, tree: Path, registry: str) -> bg.Service:
    """``meshgate gateway`` from ``tree``'s sources, with this venv's packages."""
    port = bg.free_port()
    code = (
        f"import runpy, sys; sys.path.insert(0, {str(tree)!r}); "
        "runpy.run_module('meshgate', run_name='__main__', alter_sys=True)"
    )
    argv = [sys.executable, "-c", code, "--log-level", "warning", "gateway"]
    argv += ["--port", str(port), "--registry", registry]
    return bg.Service(name, argv, port, "/readyz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline", required=True, help="the commit gateway B runs")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=2, help="wrk duration per cell")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--two-cores", action="store_true", help="no pinning (default: one core, wrk on CPU 1)"
    )
    args = parser.parse_args()
    pin = None if args.two_cores else "1"
    workload = bg.trivial_workload()
    with worktree(args.baseline) as tree, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lua = tmp / "trivial.lua"
        lua.write_text(workload.lua)
        registry = bg.start_registry(tmp)
        started: list[bg.Service] = []
        try:
            port = bg.free_port()
            argv = [sys.executable, str(ROOT / "bench" / "gateway.py"), "upstream"]
            upstream = bg.Service("direct", [*argv, "--port", str(port)], port, "/")
            started.append(upstream)
            bg.register_trivial(registry.url, upstream.url)
            started.append(start_gateway("A", ROOT, registry.url))
            started.append(start_gateway("B", tree, registry.url))
            for gateway in started[1:]:
                deadline = time.monotonic() + 30
                while (
                    bg.http_call(gateway.port, "POST", PATH, workload.body, workload.headers)[0]
                    != 200
                ):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"gateway {gateway.name} does not route the upstream")
                    time.sleep(0.2)
            if pin is not None:
                for service in started:
                    service.pin("0")
            targets = [(s, "/" if s is upstream else PATH) for s in started]
            runs: dict[str, list[bg.Run]] = {s.name: [] for s in started}
            for service, path in targets:  # warm-up
                bg.wrk(service, path, lua, args.concurrency, 1, pin)
            for round_ in range(args.rounds):
                shift = round_ % len(targets)
                for service, path in targets[shift:] + targets[:shift]:
                    run = bg.wrk(service, path, lua, args.concurrency, args.seconds, pin)
                    runs[service.name].append(run)
                cells = [
                    f"{n} {r[-1].rps:7.0f} req/s {r[-1].cpu_us:5.1f} us" for n, r in runs.items()
                ]
                print(f"round {round_ + 1:>2}: " + "  ".join(cells), flush=True)
        finally:
            for service in reversed(started):
                service.stop()
            registry.stop()
    rps = {name: statistics.median(r.rps for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r.cpu_us for r in rs) for name, rs in runs.items()}
    ratios = [a.rps / b.rps for a, b in zip(runs["A"], runs["B"], strict=True)]
    where = "two cores" if args.two_cores else "one core (upstream and gateways on CPU 0)"
    print(f"\n{where}, c={args.concurrency}, {args.rounds} rounds of {args.seconds} s")
    print(f"median req/s: direct {rps['direct']:.0f}, A {rps['A']:.0f}, B {rps['B']:.0f}")
    print(f"median gateway CPU: A {cpu['A']:.1f} us/req, B {cpu['B']:.1f} us/req")
    print(f"A/direct {rps['A'] / rps['direct']:.3f}, B/direct {rps['B'] / rps['direct']:.3f}")
    print(
        f"A/B per round: {' '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f}, rounds A ahead: "
        f"{sum(r > 1 for r in ratios)}/{len(ratios)}"
    )


if __name__ == "__main__":
    main()
