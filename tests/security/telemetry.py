"""Everything the process logs and traces while a block runs, to grep for secrets."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.tracing import span_recorder

__all__ = ["Captured", "captured", "span_text"]


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # The formatted line with its traceback, and the raw arguments too.
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@dataclass
class Captured:
    lines: list[str] = field(default_factory=list)
    exporter: InMemorySpanExporter = field(default_factory=span_recorder)

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """Spans finished since the capture began (the exporter is cleared then)."""
        return self.exporter.get_finished_spans()

    def texts(self) -> Iterator[str]:
        yield from self.lines
        yield from (span_text(span) for span in self.spans)


def span_text(span: ReadableSpan) -> str:
    """A span's name, attributes, events, links and status as one string."""
    parts = [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
    for event in span.events:
        parts += [event.name, repr(dict(event.attributes or {}))]
    for link in span.links:
        parts.append(repr(dict(link.attributes or {})))
    return " ".join(parts)


@contextlib.contextmanager
def captured() -> Iterator[Captured]:
    """Every log record (root at DEBUG) and every span finished inside the block."""
    found = Captured()
    found.exporter.clear()
    root = logging.getLogger()
    handler = _Lines(found.lines)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        root.setLevel(level)
        root.removeHandler(handler)
