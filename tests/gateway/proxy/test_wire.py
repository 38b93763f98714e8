"""Request heads and response header filtering, without sockets."""

from __future__ import annotations

import pytest

from gateway.proxy.wire import encode_head, host_header, response_headers


def test_the_head_has_host_length_and_headers_in_order() -> None:
    head = encode_head(
        b"POST",
        b"/a2a/x/?q=1",
        b"up:8000",
        [(b"content-type", b"application/json"), (b"Host", b"other"), (b"Proxy-Connection", b"x")],
        42,
    )
    assert head == (
        b"POST /a2a/x/?q=1 HTTP/1.1\r\nhost: up:8000\r\ncontent-length: 42\r\n"
        b"content-type: application/json\r\n\r\n"
    )


def test_an_empty_post_still_says_its_length() -> None:
    assert b"content-length: 0\r\n" in encode_head(b"POST", b"/", b"h", [], 0)
    assert b"content-length" not in encode_head(b"GET", b"/", b"h", [], 0)


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (b"/ HTTP/1.1\r\nx-injected: 1\r\n", []),
        (b"/", [(b"x-a", b"1\r\nx-injected: 1")]),
        (b"/", [(b"x-a", b"1\nx-injected: 1")]),
        (b"/", [(b"x-a\r", b"1")]),
    ],
)
def test_cr_or_lf_in_a_value_is_refused(target: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        encode_head(b"GET", target, b"h", headers, 0)


def test_host_header() -> None:
    assert host_header("10.0.0.1", 8000) == b"10.0.0.1:8000"
    assert host_header("agent.svc", 80) == b"agent.svc"
    assert host_header("::1", 8000) == b"[::1]:8000"


def test_hop_by_hop_and_connection_listed_headers_are_dropped() -> None:
    raw = [
        (b"content-type", b"text/event-stream"),
        (b"connection", b"keep-alive, X-Private"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"x-private", b"1"),
        (b"proxy-authenticate", b"Basic"),
        (b"upgrade", b"h2c"),
        (b"content-length", b"12"),
    ]
    assert response_headers(raw) == [
        (b"content-type", b"text/event-stream"),
        (b"content-length", b"12"),
    ]
