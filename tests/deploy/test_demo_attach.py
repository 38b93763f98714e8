"""``meshgate demo --attach URL``: the scenario the compose smoke test runs against a mesh."""

from __future__ import annotations

import re

from click.testing import CliRunner

from meshgate.cli import main
from meshgate.commands.options import free_port


def test_attach_to_no_gateway_fails_every_step_and_exits_1() -> None:
    nothing = f"http://127.0.0.1:{free_port('127.0.0.1')}/"
    result = CliRunner().invoke(main, ["demo", "--attach", nothing, "--ready-within", "0.5"])

    assert result.exit_code == 1, result.output
    assert f"against {nothing.rstrip('/')}" in result.output
    assert re.search(r"^0/\d+ steps passed", result.output, re.MULTILINE)
    # Nothing was started: no "meshgate up" step, no Ctrl-C step.
    assert "meshgate up starts the mesh" not in result.output
