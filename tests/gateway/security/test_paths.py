"""normalize_path: the canonical form, and its properties for any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.security import encode_path, normalize_path


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b"/", "/"),
        (b"/a2a/x", "/a2a/x"),
        (b"/a2a/x/", "/a2a/x"),
        (b"///a2a///x///", "/a2a/x"),
        (b"/a/./b/../c", "/a/c"),
        (b"/a/%2e/%2E%2e/c", "/c"),
        (b"/a2a/x/.well-known/agent-card.json", "/a2a/x/.well-known/agent-card.json"),
        (b"/a/...", "/a/..."),
        (b"/a/.b/..c", "/a/.b/..c"),
        (b"/a/%41%7e", "/a/A~"),
        (b"/a/caf%c3%a9", "/a/café"),
        (b"/a;b=c/d", "/a;b=c/d"),
        (b"/A2A/X", "/A2A/X"),
        (b"/a/%20b", "/a/ b"),
    ],
)
def test_canonical_forms(raw: bytes, canonical: str) -> None:
    assert normalize_path(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"a/b",
        b"*",
        b"/..",
        b"/a/../..",
        b"/%2e%2e",
        b"/a%2fb",
        b"/a%2Fb",
        b"/a%5cb",
        b"/a\\b",
        b"/a%00",
        b"/a\x00",
        b"/a%0d%0a",
        b"/a\x7f",
        b"/a%3f",
        b"/a%23",
        b"/a?b",
        b"/a#b",
        b"/a%252e%252e",
        b"/a%",
        b"/a%4",
        b"/a%g1",
        b"/a%ff",
        b"/a%c0%ae",
        b"/a\xc3",
    ],
)
def test_refused(raw: bytes) -> None:
    assert normalize_path(raw) is None


def test_encoding_again_round_trips() -> None:
    for path in ("/a2a/café", "/a/ b", "/a/x;y=z", "/a/~!$&'()*+,=:@-._"):
        encoded = encode_path(path)
        assert encoded.isascii()
        assert normalize_path(encoded.encode()) == path


@given(st.binary(max_size=60) | st.text(alphabet="/.%2eEfF5cC0a;", max_size=30).map(str.encode))
def test_any_input_is_refused_or_canonical_and_stable(raw: bytes) -> None:
    path = normalize_path(b"/" + raw)
    if path is None:
        return
    assert path.startswith("/")
    assert path == "/" or not path.endswith("/")
    assert "//" not in path
    segments = path.split("/")[1:]
    assert "." not in segments
    assert ".." not in segments
    assert not {"\\", "%", "?", "#", "\x00"} & set(path)
    assert normalize_path(encode_path(path).encode()) == path
