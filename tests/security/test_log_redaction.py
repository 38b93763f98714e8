"""The MCP SDK's log lines keep their meaning but lose the session id."""

from __future__ import annotations

import logging

import pytest

from gateway.security.redaction import SESSION_LOGGERS, redact_session_ids

SESSION = "08d70eec8be24a8b87089c1a02bc9eed"


@pytest.mark.parametrize(
    ("logger", "message"),
    [
        (SESSION_LOGGERS[0], f"Created new transport with session ID: {SESSION}"),
        (SESSION_LOGGERS[0], f"Rejected request with unknown or expired session ID: {SESSION}"),
        (SESSION_LOGGERS[0], f"Session {SESSION} idle timeout"),
        (SESSION_LOGGERS[1], f"Terminating session: {SESSION}"),
        (SESSION_LOGGERS[2], f"Received invalid session ID: {SESSION}"),
        (SESSION_LOGGERS[2], f"Created new session with ID: {SESSION}"),
    ],
)
def test_a_session_id_is_replaced_by_a_fingerprint(
    caplog: pytest.LogCaptureFixture, logger: str, message: str
) -> None:
    redact_session_ids()
    redact_session_ids()  # idempotent: one filter per logger
    assert len(logging.getLogger(logger).filters) == 1
    with caplog.at_level(logging.DEBUG, logger=logger):
        logging.getLogger(logger).info(message)
    [record] = caplog.records
    assert SESSION not in record.getMessage()
    assert "<redacted " in record.getMessage()


def test_other_lines_pass_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    redact_session_ids()
    with caplog.at_level(logging.INFO, logger=SESSION_LOGGERS[0]):
        logging.getLogger(SESSION_LOGGERS[0]).info("StreamableHTTP session manager started")
    assert caplog.records[0].getMessage() == "StreamableHTTP session manager started"
