import os

import pytest

# The a2a-sdk makes ~40 spans per message when an SDK tracer provider exists;
# the mesh's own spans are what the tests look at.
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")


@pytest.fixture
def anyio_backend() -> str:
    # Meshgate runs on asyncio (uvicorn); the tests do too.
    return "asyncio"
