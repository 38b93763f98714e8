"""Process-level OpenTelemetry set-up: only processes configure the SDK.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
set, spans are exported over OTLP/HTTP with the standard ``OTEL_*`` variables;
otherwise nothing is configured and the library code's spans cost nothing.
The a2a-sdk's own per-message spans (about 40) stay off unless asked for.
"""

from __future__ import annotations

import logging
import os

__all__ = ["configure_tracing"]

logger = logging.getLogger("meshgate.telemetry")


def configure_tracing(service_name: str) -> bool:
    """Install an exporting tracer provider when the environment asks; True if it did."""
    os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the exporter is not installed: "
            "pip install 'meshgate[otlp]'; tracing stays off"
        )
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    logger.info("exporting traces over OTLP as %s", resource.attributes["service.name"])
    return True
