"""One replica of the summarizer in its own process, for tests that kill it (``kill -9``).

The real agent runtime registers it with the registry given as the only
argument, with an active probe every half second that turns it critical at
the first failure: a dead replica shows as such within a second, not after
the default 30 s. Prints its base URL on one line of stdout, then serves
until it is killed.

    python -m tests.gateway.ui.replica http://127.0.0.1:PORT
"""

from __future__ import annotations

import sys

import anyio

from agents.summarizer import agent
from registry.models import CheckSpec
from tests.agents.mesh import running_agent

CHECK = CheckSpec(
    ttl_seconds=60, interval_seconds=0.5, timeout_seconds=1, failures_before_critical=1
)


async def main(registry_url: str) -> None:
    async with running_agent(agent, registry_url=registry_url, check=CHECK) as url:
        print(url, flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
