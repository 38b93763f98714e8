"""compose/check_scrape.py, the smoke test's last check, against a real Prometheus.

Debian's prometheus scrapes a registry served on loopback; the check passes only
once every target is up, and fails (exit 1, naming the target) when one is down.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from registry.backends.memory import MemoryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.deploy.tools import REPO, Run, run, tool
from tests.support.live import free_port, serve

pytestmark = pytest.mark.anyio
CHECK = str(REPO / "compose" / "check_scrape.py")


@contextmanager
def prometheus(tmp_path: Path, targets: list[str]) -> Iterator[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: mesh\n    static_configs:\n      - targets: {targets}\n"
    )
    port = free_port()
    argv = [
        tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def check(url: str, expect: int, within: float) -> Run:
    argv = (sys.executable, CHECK, url, "--expect", str(expect), "--within", str(within))
    return await anyio.to_thread.run_sync(lambda: run(*argv))


async def test_passes_once_prometheus_has_scraped_every_target_up(tmp_path: Path) -> None:
    app = create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback()))
    async with serve(app) as registry:
        with prometheus(tmp_path, [registry.removeprefix("http://")]) as url:
            result = await check(url, 1, 60)
    assert result.returncode == 0, result.stdout
    assert "1 targets up" in result.stdout


async def test_fails_naming_a_target_that_is_down(tmp_path: Path) -> None:
    app = create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback()))
    nothing = f"127.0.0.1:{free_port()}"
    async with serve(app) as registry:
        with prometheus(tmp_path, [registry.removeprefix("http://"), nothing]) as url:
            result = await check(url, 2, 8)
    assert result.returncode == 1
    assert "wanted 2 targets up" in result.stdout
    assert nothing in result.stdout
