from __future__ import annotations

import pytest

from registry.backends import BackendOptions, MemoryBackend, SqliteBackend, create_backend


def test_backends_are_chosen_by_short_name(tmp_path: object) -> None:
    assert isinstance(create_backend("memory"), MemoryBackend)
    assert isinstance(create_backend("sqlite"), SqliteBackend)


@pytest.mark.parametrize(
    "spec", ["registry.backends.memory:MemoryBackend", "registry.backends.memory.MemoryBackend"]
)
def test_backends_are_chosen_by_import_path(spec: str) -> None:
    assert isinstance(create_backend(spec, BackendOptions()), MemoryBackend)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "unknown registry backend"),
        ("nosuch.module:Thing", "cannot load"),
        ("registry.backends.memory:Nothing", "cannot load"),
        ("registry.models:Health", "not a RegistryBackend"),
    ],
)
def test_unknown_backends_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_backend(spec)
