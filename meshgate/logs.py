"""Process logging: one JSON object per line, or a human line on a terminal."""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry import trace

from gateway.security.redaction import redact_session_ids

__all__ = ["configure_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info", *, json_lines: bool | None = None) -> None:
    """Configure the root logger once, before any library does it for us."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs and httpx's line per request (heartbeats, probes) would drown
    # the events that matter; metrics count requests instead.
    for name in ("uvicorn.access", "httpx", "httpcore", "httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # Every process with an MCP endpoint (gateway, agents, tool servers): the SDK
    # logs session ids, which are credentials of their sessions, in full.
    redact_session_ids()
