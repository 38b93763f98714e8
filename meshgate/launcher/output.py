"""What ``meshgate up`` prints: ``name | line`` in colour on a terminal, JSON lines otherwise."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any, TextIO

import click

__all__ = ["LAUNCHER", "Output"]

#: The prefix of the launcher's own lines.
LAUNCHER = "meshgate"
_COLOURS = ("cyan", "green", "yellow", "magenta", "blue", "bright_cyan", "bright_green")


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class Output:
    """One writer for the launcher's events and its children's log lines."""

    def __init__(
        self, stream: TextIO, *, json_lines: bool, colour: bool, names: Sequence[str] = ()
    ) -> None:
        self.json_lines = json_lines
        self._stream = stream
        self._colour = colour and not json_lines
        self._width = max((len(n) for n in (LAUNCHER, *names)), default=len(LAUNCHER))
        self._colours = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(names)}

    def child(self, name: str, line: str) -> None:
        """A line a child process wrote (its JSON object gains a ``component`` key)."""
        if self.json_lines:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                entry = {"ts": _now(), "msg": line}
            self._json({"component": name, **entry})
        else:
            self._human(name, line, self._colours.get(name))

    def event(self, event: str, message: str, **fields: Any) -> None:
        """The launcher's own news: ``starting``, ``ready``, ``restarting``, ``stopped``, ..."""
        if self.json_lines:
            self._json(
                {"ts": _now(), "component": LAUNCHER, "event": event, "msg": message, **fields}
            )
        else:
            bad = event in ("exited", "failed", "gave_up", "killed", "error")
            self._human(LAUNCHER, message, "red" if bad else None, bold=True)

    def summary(
        self, urls: Sequence[tuple[str, str]], claude: dict[str, Any], **fields: Any
    ) -> None:
        """Where the mesh answers, and the Claude Desktop snippet."""
        if self.json_lines:
            self.event(
                "up",
                "the mesh is up",
                urls={k.lower(): v for k, v in urls},
                claude_desktop_config=claude,
                **fields,
            )
            return
        width = max(len(k) for k, _ in urls)
        lines = [""]
        for label, url in urls:
            lines.append(f"  {label:<{width}}  {self._style(url, None, bold=True)}")
        lines += ["", "  Claude Desktop (merge into claude_desktop_config.json):"]
        lines += [f"    {line}" for line in json.dumps(claude, indent=2).splitlines()]
        lines += ["", "  Press Ctrl-C to stop the mesh.", ""]
        self._write("\n".join(lines))

    def _style(self, text: str, colour: str | None, *, bold: bool = False) -> str:
        return click.style(text, fg=colour, bold=bold or None) if self._colour else text

    def _human(self, name: str, line: str, colour: str | None, *, bold: bool = False) -> None:
        prefix = self._style(f"{name:>{self._width}} |", colour, bold=bold)
        self._write(f"{prefix} {line}")

    def _json(self, entry: dict[str, Any]) -> None:
        self._write(json.dumps(entry, ensure_ascii=False, default=str))

    def _write(self, text: str) -> None:
        # A reader that went away (`meshgate up | head`) must not take the mesh down with it.
        with contextlib.suppress(BrokenPipeError):
            self._stream.write(text + "\n")
            self._stream.flush()
