"""Session ids out of library log lines: an MCP session id is a credential of its session.

The MCP SDK logs every session id it creates, ends or refuses in full (at
INFO). :func:`redact_session_ids` installs a filter on that logger
which keeps the line and replaces the id with a short fingerprint, enough to
correlate lines of one session and useless to resume it.
"""

from __future__ import annotations

import hashlib
import logging
import re

__all__ = ["SESSION_LOGGERS", "SessionIdFilter", "redact_session_ids"]

#: Loggers known to print session ids.
SESSION_LOGGERS = (
    "mcp.server.streamable_http_manager",
    "mcp.server.streamable_http",
    "mcp.server.sse",
)
# "session ID: <id>", "Terminating session: <id>", "Session <id> idle timeout",
# "session with ID: <id>": what the SDK's lines put before an id.
_SESSION_ID = re.compile(r"((?:[Ss]ession(?: ID)?|ID): |Session )(\S+)")


def _fingerprint(match: re.Match[str]) -> str:
    digest = hashlib.sha256(match[2].encode()).hexdigest()[:8]
    return f"{match[1]}<redacted {digest}>"


class SessionIdFilter(logging.Filter):
    """Rewrites the session id in a record's message; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SESSION_ID.sub(_fingerprint, message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redact_session_ids() -> None:
    """Install :class:`SessionIdFilter` on :data:`SESSION_LOGGERS` (once per process)."""
    for name in SESSION_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SessionIdFilter) for f in logger.filters):
            logger.addFilter(SessionIdFilter())
