import pytest


@pytest.fixture
def anyio_backend() -> str:
    # Meshgate runs on asyncio (uvicorn); the tests do too.
    return "asyncio"
