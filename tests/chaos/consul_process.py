"""``python -m tests.chaos.consul_process PORT``: the Consul HTTP API double as a
process of its own, so a nemesis can stop it (SIGSTOP) like a Consul agent."""

from __future__ import annotations

import sys

import uvicorn

from tests.support.consul_double import ConsulDouble

__all__ = ["main"]


def main(argv: list[str]) -> None:
    port = int(argv[0])
    double = ConsulDouble(min_deregister_after=0.0)
    uvicorn.run(double.app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
