from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from meshgate.logs import JsonFormatter
from meshgate.telemetry import configure_tracing


def test_tracing_stays_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert configure_tracing("meshgate-test") is False


def test_an_endpoint_installs_an_exporting_provider() -> None:
    # A fresh process: the tracer provider can be set once per process.
    code = (
        "from meshgate.telemetry import configure_tracing\n"
        "from opentelemetry import trace\n"
        "print(configure_tracing('meshgate-test'), type(trace.get_tracer_provider()).__name__)\n"
    )
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "TracerProvider"]


def test_json_log_lines_carry_the_trace_id() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("meshgate.test", logging.INFO, __file__, 1, "hello", None, None)
    with trace.use_span(tracer.start_span("work"), end_on_exit=True) as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
