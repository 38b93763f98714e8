"""The short chaos run (the long one is ``make chaos``): every request ends in a
success or an explicit error within its deadline, no A2A message completes
twice, and the mesh serves again once each fault is over.

The table is printed (``pytest -s``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.mesh import MeshSettings
from tests.chaos.nemesis import faults
from tests.chaos.run import run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


async def test_every_request_ends_explicitly_through_kills_registry_outage_and_slow_upstreams(
    tmp_path: Path,
) -> None:
    report = await run_chaos(MeshSettings(backend="sqlite"), faults(hold=2.5), tmp_path)
    print("\n" + report.table())
    assert report.violations == []
    assert report.total.requests > 200
    recovered = report.rows[-1]
    assert recovered.name == "recovered"
    assert recovered.success_rate == 1.0, recovered
    # Only the faults may cost requests, and then a few.
    assert report.during_faults.success_rate > 0.9, report.during_faults
