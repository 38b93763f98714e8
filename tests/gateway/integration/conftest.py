from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.integration.mesh import Mesh, running_mesh


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    """One mesh per module (tests that need other settings build their own).

    Round robin, so that consecutive messages land on both replicas for sure:
    tests of task affinity need tasks on both.
    """
    async with running_mesh(balancer="round_robin") as mesh:
        yield mesh
