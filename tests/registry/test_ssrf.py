"""The URL policy refuses every way of spelling an internal address."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from registry.errors import InvalidRequest
from registry.ssrf import UrlPolicy, check_url, is_refused_address

pytestmark = pytest.mark.anyio

# Fake DNS: no test may reach a real resolver.
ZONE: dict[str, list[str]] = {
    "example.com": ["93.184.215.14"],
    "dual.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebind.test": ["127.0.0.1"],
    "mixed.test": ["93.184.215.14", "10.0.0.7"],
    "internal.test": ["10.1.2.3"],
    "xn--bcher-kva.example": ["93.184.215.14"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    return ZONE.get(host, [])


async def refused(url: str, policy: UrlPolicy | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        await check_url(url, policy or UrlPolicy(), resolver=fake_resolver)
    [error] = caught.value.errors
    assert error.field == "url"
    return error.message


REFUSED = [
    # 127.0.0.1 however written
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0177.0000.0000.0001/",
    "http://0x7f.0.0.1/",
    "http://0X7F.0.0.1/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0177.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "http://127.255.255.254:8080/",
    "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/",  # full-width digits and dots
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[2002:7f00:1::1]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://localhost:8080/",
    "http://api.localhost/",
    # unspecified
    "http://0.0.0.0/",
    "http://0/",
    "http://0.1.2.3/",
    "http://[::]/",
    # cloud metadata
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://metadata/",
    # private, link-local, CGNAT, ULA
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[2002:c0a8:101::1]/",
    # multicast, broadcast, reserved
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    # names resolving somewhere internal
    "http://rebind.test/",
    "http://mixed.test/",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_addresses_in_any_encoding_are_refused(url: str) -> None:
    message = await refused(url)
    assert "refused by the URL policy" in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://user@example.com/", "userinfo"),
        ("http://user:pw@example.com/", "userinfo"),
        ("http://example.com@127.0.0.1/", "userinfo"),
        ("http://:@example.com/", "userinfo"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com:70/_", "scheme"),
        ("ftp://example.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("//example.com/", "scheme"),
        ("example.com", "scheme"),
        ("http://example.com\\@127.0.0.1/", "backslash"),
        ("http:\\\\127.0.0.1\\", "backslash"),
        ("http://example.com /", "whitespace"),
        ("http://exa\tmple.com/", "whitespace"),
        ("http://example.com\n.evil/", "whitespace"),
        ("http://example.com\x00/", "control"),
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://[fe80::1%25eth0]/", "percent-encoded"),
        ("http:///path", "no host"),
        ("http://:8080/", "no host"),
        ("http://example.com:0/", "port"),
        ("http://example.com:70000/", "port"),
        ("http://example.com:-1/", "port"),
        ("http://example.com:8o/", "port"),
        ("http://example.com/#@127.0.0.1", "fragment"),
        ("http://::1/", "brackets"),
        ("http://[::1/", "IPv6"),
        ("http://[::1]evil.com/", "IPv6"),
        ("http://[v1.fe]/", "IPv6"),
        ("http://08.0.0.1/", "malformed IPv4"),
        ("http://1.2.3.4.5/", "malformed IPv4"),
        ("http://example.123/", "malformed IPv4"),
        ("http://0x100000000/", "out of range"),
        ("http://256.0.0.1/", "out of range"),
        ("http://exa*mple.com/", "invalid host name"),
        ("http://unknown.test/", "does not resolve"),
    ],
)
async def test_malformed_or_tricky_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    assert why in await refused(url)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://example.com/", "http://example.com/"),
        ("HTTPS://EXAMPLE.COM:8443/A/b?Q=1", "https://example.com:8443/A/b?Q=1"),
        ("http://example.com.", "http://example.com"),
        ("http://dual.example.com:80/x", "http://dual.example.com:80/x"),
        ("http://93.184.215.14/", "http://93.184.215.14/"),
        ("http://1572394766/", "http://93.184.215.14/"),
        ("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/", None),
        ("http://[2002:5db8:d70e::1]/", None),  # 6to4 around a public address
        ("http://b\u00fccher.example/", "http://xn--bcher-kva.example/"),
    ],
)
async def test_public_addresses_and_names_pass_normalised(url: str, normalised: str | None) -> None:
    result = await check_url(url, UrlPolicy(), resolver=fake_resolver)
    assert result == (normalised or url)


async def test_refusal_names_the_field_it_was_given() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await check_url("http://10.0.0.1/", UrlPolicy(), field="card.x", resolver=fake_resolver)
    assert [e.field for e in caught.value.errors] == ["card.x"]


async def test_a_resolver_failure_means_the_name_does_not_resolve() -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise OSError("SERVFAIL")

    with pytest.raises(InvalidRequest, match="does not resolve"):
        await check_url("http://example.com/", UrlPolicy(), resolver=broken)


async def test_the_resolver_is_asked_for_the_scheme_default_port() -> None:
    asked: list[tuple[str, int]] = []

    async def recording(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.215.14"]

    await check_url("https://example.com/", UrlPolicy(), resolver=recording)
    await check_url("http://example.com:8080/", UrlPolicy(), resolver=recording)
    assert asked == [("example.com", 443), ("example.com", 8080)]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9001/", "http://[::1]:9001/", "http://127.1/"])
async def test_loopback_policy_admits_loopback(url: str) -> None:
    await check_url(url, UrlPolicy.loopback(), resolver=fake_resolver)


async def test_loopback_policy_admits_localhost_without_asking_dns() -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("localhost must not reach the resolver")

    assert await check_url("http://localhost:9001/", UrlPolicy.loopback(), resolver=no_dns) == (
        "http://localhost:9001/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://metadata.google.internal/",
        "http://internal.test/",
        "http://0.0.0.0/",
    ],
)
async def test_loopback_policy_still_refuses_other_internal_addresses(url: str) -> None:
    await refused(url, UrlPolicy.loopback())


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://192.168.1.1/", "http://[fd12::1]/", "http://localhost/"]
)
async def test_allow_private_admits_private_addresses(url: str) -> None:
    await check_url(url, UrlPolicy(allow_private=True), resolver=fake_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
async def test_allow_private_still_refuses_metadata_and_unroutable(url: str) -> None:
    await refused(url, UrlPolicy(allow_private=True))


async def test_an_allowed_network_admits_exactly_its_range() -> None:
    policy = UrlPolicy(allowed_networks=(ip_network("10.1.0.0/16"),))
    for inside in ("http://10.1.0.1/", "http://10.1.255.254/", "http://internal.test/"):
        await check_url(inside, policy, resolver=fake_resolver)
    for outside in ("http://10.0.255.255/", "http://10.2.0.0/", "http://127.0.0.1/"):
        await refused(outside, policy)


async def test_an_allowed_network_can_admit_a_metadata_address_explicitly() -> None:
    policy = UrlPolicy(allowed_networks=(ip_network("169.254.169.254/32"),))
    await check_url("http://169.254.169.254/", policy, resolver=fake_resolver)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("169.254.169.254", "metadata"),
        ("fe80::1%eth0", "link-local"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("93.184.215.14", None),
    ],
)
def test_is_refused_address_gives_the_reason_for_connect_time_checks(
    address: str, reason: str | None
) -> None:
    result = is_refused_address(ip_address(address), UrlPolicy())
    if reason is None:
        assert result is None
    else:
        assert result is not None
        assert reason in result


async def test_the_default_resolver_returns_address_strings() -> None:
    from registry.ssrf import _default_resolver

    # A numeric host: getaddrinfo answers without DNS.
    assert await _default_resolver("127.0.0.1", 80) == ["127.0.0.1"]
