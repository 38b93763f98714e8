"""What ``meshgate up`` prints: prefixed, coloured lines on a terminal; JSON lines otherwise."""

from __future__ import annotations

import io
import json

from meshgate.launcher import Output

CLAUDE = {"mcpServers": {"meshgate": {"command": "meshgate", "args": ["mcp-stdio"]}}}
URLS = [("Gateway", "http://127.0.0.1:8080"), ("MCP", "http://127.0.0.1:8080/mcp")]


def test_on_a_terminal_each_line_gets_its_coloured_name_prefix() -> None:
    out = io.StringIO()
    output = Output(out, json_lines=False, colour=True, names=["registry", "researcher-1"])
    output.child("registry", "12:00:00 INFO    uvicorn.error: Started")
    output.child("researcher-1", "hello")
    output.event("ready", "registry ready")
    output.event("exited", "calc crashed")
    lines = out.getvalue().splitlines()
    assert lines[0] == "\x1b[36m    registry |\x1b[0m 12:00:00 INFO    uvicorn.error: Started"
    assert lines[1] == "\x1b[32mresearcher-1 |\x1b[0m hello"
    assert lines[2] == "\x1b[1m    meshgate |\x1b[0m registry ready"
    assert lines[3].startswith("\x1b[31m\x1b[1m    meshgate |")  # trouble in red


def test_without_colour_the_prefix_stays_and_the_summary_is_plain() -> None:
    out = io.StringIO()
    output = Output(out, json_lines=False, colour=False, names=["gateway"])
    output.child("gateway", "ready")
    output.summary(URLS, CLAUDE)
    text = out.getvalue()
    assert " gateway | ready\n" in text
    assert "  Gateway  http://127.0.0.1:8080\n" in text
    assert "  MCP      http://127.0.0.1:8080/mcp\n" in text
    assert '        "args": [\n' in text
    assert "Press Ctrl-C to stop the mesh." in text
    assert "\x1b[" not in text


def test_json_lines_carry_the_component_and_keep_the_childs_fields() -> None:
    out = io.StringIO()
    output = Output(out, json_lines=True, colour=True, names=["calc"])
    output.child("calc", '{"ts": "t", "level": "info", "msg": "started"}')
    output.child("calc", "Traceback (most recent call last):")
    output.child("calc", "[1, 2]")
    output.event("ready", "calc ready", pid=7)
    output.summary(URLS, CLAUDE, seconds=1.5)
    first, second, third, event, summary = map(json.loads, out.getvalue().splitlines())
    assert first == {"component": "calc", "ts": "t", "level": "info", "msg": "started"}
    assert second["component"] == "calc"
    assert second["msg"] == "Traceback (most recent call last):"
    assert third["msg"] == "[1, 2]"
    assert event["component"] == "meshgate"
    assert (event["event"], event["msg"], event["pid"]) == ("ready", "calc ready", 7)
    assert summary["event"] == "up"
    assert summary["urls"] == {"gateway": URLS[0][1], "mcp": URLS[1][1]}
    assert summary["claude_desktop_config"] == CLAUDE
    assert summary["seconds"] == 1.5
