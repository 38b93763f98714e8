"""``/ui`` in headless Chromium, on a mesh of real processes: a killed replica turns unhealthy.

The gateway requires an API key, so the page first asks for it (and lists
nothing before it has one).

Debian's ``chromium`` driven by Playwright (never a browser download: ``make
peers`` installs the package). Without it the test is skipped and says why.
Screenshots go to ``.artifacts/ui/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.live import free_port
from tests.support.processes import MeshProcess, processes

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[3] / ".artifacts" / "ui"
TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"
KEY = "dashboard-test-key-1b2c3d"
AUTH = {"x-api-key": KEY}
TEXT = (
    "The gateway routes every A2A message to a healthy replica. "
    "Each replica registers with the registry and answers its probes. "
    "A replica that stops answering is marked critical and gets no more traffic."
)

T = TypeVar("T")


def until(probe: Callable[[], T], ok: Callable[[T], bool], within: float, what: str) -> T:
    """Poll ``probe`` until ``ok`` holds; fail after ``within`` seconds, naming ``what``."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s; last: {value!r}")
        time.sleep(0.1)


@contextlib.contextmanager
def replica(
    registry_url: str, logs: Path, name: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A summarizer replica process; yields it and its URL; kills it on exit."""
    log = (logs / f"{name}.log").open("wb")
    command = [sys.executable, "-m", "tests.gateway.ui.replica", registry_url]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=30):
                raise AssertionError(f"{name} printed no URL within 30s")
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:"), (logs / f"{name}.log").read_text()[-2000:]
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        log.close()


def browser() -> Any:
    """Playwright's Chromium on Debian's binary, or a skip that says what is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make peers installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (the dev extra pins it)")
    return sync_playwright


def send(gateway: str, text: str, traceparent: str | None = None) -> None:
    message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    headers = {"A2A-Version": "1.0", **AUTH}
    if traceparent:
        headers["traceparent"] = traceparent
    answer = httpx.post(f"{gateway}/a2a/summarizer/", json=rpc, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def state(gateway: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway}/ui/state.json", headers=AUTH, timeout=5)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def passing(gateway: str, service: str) -> int:
    for entry in state(gateway)["services"]:
        if entry["name"] == service:
            return sum(i["state"] == "passing" for i in entry["instances"])
    return 0


def test_the_dashboard_lists_each_agent_and_shows_a_killed_replica_unhealthy(
    tmp_path: Path,
) -> None:
    sync_playwright = browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    registry_url = f"http://127.0.0.1:{free_port()}"
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    with processes() as started, contextlib.ExitStack() as stack:
        registry = MeshProcess(
            "registry",
            [
                *("registry", "--port", registry_url.rsplit(":", 1)[1]),
                *("--data", str(tmp_path / "r.db"), "--allow-cidr", "127.0.0.0/8"),
            ],
            registry_url,
            tmp_path,
        )
        started.append(registry)
        registry.wait_ready()
        calc_port = free_port()
        calc = MeshProcess(
            "calc",
            ["mcp-server", "calc", "--port", str(calc_port), "--registry", registry_url],
            f"http://127.0.0.1:{calc_port}",
            tmp_path,
        )
        started.append(calc)
        started.append(
            MeshProcess(
                "gateway",
                [
                    *("gateway", "--port", str(gateway_port), "--registry", registry_url),
                    *("--api-key", KEY),
                ],
                gateway,
                tmp_path,
            )
        )
        replicas = [stack.enter_context(replica(registry_url, tmp_path, f"r{i}")) for i in (1, 2)]
        for proc in started:
            proc.wait_ready()
        until(lambda: passing(gateway, "summarizer"), lambda n: n == 2, 20, "two passing replicas")
        until(lambda: passing(gateway, "calc"), lambda n: n == 1, 20, "calc passing")
        for i in range(6):
            send(gateway, TEXT, f"00-{TRACE}-00f067aa0ba902b7-01" if i == 0 else None)

        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page(viewport={"width": 1440, "height": 900})
                outside: list[str] = []
                page.on(
                    "request",
                    lambda r: outside.append(r.url) if not r.url.startswith(gateway) else None,
                )
                page.goto(f"{gateway}/ui")
                page.wait_for_selector("#login[open]", timeout=10_000)
                assert page.locator("article[data-service]").count() == 0
                page.screenshot(path=str(ARTIFACTS / "sign-in.png"))
                page.fill("#login-key", KEY)
                page.click("#login button[type=submit]")

                def states() -> dict[str, str]:
                    found: dict[str, str] = page.eval_on_selector_all(
                        "[data-service] li[data-url]",
                        "els => Object.fromEntries(els.map(e => [e.dataset.url, e.dataset.state]))",
                    )
                    return found

                urls = {url.rstrip("/") + "/" for _, url in replicas}
                shown = until(
                    states,
                    lambda s: all(s.get(u) == "passing" for u in urls) and len(s) == 3,
                    10,
                    "both replicas and calc listed passing",
                )
                agents = page.eval_on_selector_all(
                    "article[data-service]", "els => els.map(e => e.dataset.service)"
                )
                assert agents == ["summarizer", "calc"]
                badges = page.locator("article[data-service=summarizer] .badge").all_inner_texts()
                assert badges == ["passing", "passing"]
                until(
                    lambda: page.locator("#traces tr[data-trace]").count(),
                    lambda n: n >= 6,
                    5,
                    "recent exchanges listed",
                )
                assert page.locator(f'#traces tr[data-trace="{TRACE}"]').count() == 1
                page.screenshot(path=str(ARTIFACTS / "mesh.png"), full_page=True)
                page.emulate_media(color_scheme="dark")
                page.screenshot(path=str(ARTIFACTS / "mesh-dark.png"), full_page=True)
                page.emulate_media(color_scheme="light")

                victim, victim_url = replicas[0]
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(timeout=10)
                dead = victim_url.rstrip("/") + "/"
                shown = until(
                    states,
                    lambda s: s.get(dead) in ("critical", "ejected"),
                    8,
                    "the killed replica shown unhealthy",
                )
                (alive,) = urls - {dead}
                assert shown[alive] == "passing"
                badge = page.locator(f'li[data-url="{dead}"] .badge')
                assert badge.inner_text() in ("critical", "ejected")
                page.screenshot(path=str(ARTIFACTS / "replica-killed.png"), full_page=True)
                assert outside == []
            finally:
                chromium.close()
