from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from registry.backends import MemoryBackend, RegistryBackend
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy

AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@contextlib.asynccontextmanager
async def running_registry(
    backend: RegistryBackend | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A registry app with its lifespan running, and a client wired to it in-process."""
    settings.setdefault("url_policy", UrlPolicy.loopback())
    app: Starlette = create_app(backend or MemoryBackend(), RegistrySettings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            yield client


@pytest.fixture
def registry_factory() -> AppFactory:
    return running_registry


@pytest.fixture
async def registry() -> AsyncIterator[httpx.AsyncClient]:
    async with running_registry() as client:
        yield client
