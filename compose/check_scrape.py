"""Poll Prometheus until it has scraped at least N targets, all up (compose/smoke.sh).

Exit 0 with the targets listed once it holds; exit 1 with what was seen at the deadline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request

__all__ = ["main", "targets"]


def targets(prometheus: str) -> list[tuple[str, str, str]]:
    """``(job, instance, health)`` of each active target."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(prometheus.rstrip("/") + "/api/v1/targets?state=active", timeout=5) as r:
        body = json.load(r)
    return sorted(
        (t["labels"]["job"], t["labels"]["instance"], t["health"])
        for t in body["data"]["activeTargets"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prometheus", help="Prometheus' base URL")
    parser.add_argument("--expect", type=int, required=True, help="targets that must be up")
    parser.add_argument("--within", type=float, default=60.0, help="seconds to wait")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.within
    seen: list[tuple[str, str, str]] = []
    while time.monotonic() < deadline:
        try:
            seen = targets(args.prometheus)
        except OSError as exc:
            print(f"  (Prometheus not answering yet: {exc})")
        up = [t for t in seen if t[2] == "up"]
        if len(up) >= args.expect and len(up) == len(seen):
            for job, instance, health in seen:
                print(f"  {job:<13} {instance:<28} {health}")
            print(f"{len(up)} targets up")
            return 0
        time.sleep(1)  # polling Prometheus until the deadline
    print(f"after {args.within:.0f} s, wanted {args.expect} targets up, saw:")
    for job, instance, health in seen:
        print(f"  {job:<13} {instance:<28} {health}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
