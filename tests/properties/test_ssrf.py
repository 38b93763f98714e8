"""Properties of the registry's URL policy: no spelling of an internal address passes.

Addresses are drawn from every range the policy refuses (loopback, RFC 1918,
link-local and metadata, CGNAT, unspecified, IPv6 loopback, ULA, link-local,
site-local) and written in every form a parser reads (decimal, octal, hex,
mixed, shortened, IPv4 in IPv6); each must be refused. Public addresses in the
same forms must be admitted, as their one canonical spelling.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidRequest
from registry.ssrf import UrlPolicy, check_url, literal_refusal
from tests.fuzz.openapi import scale
from tests.properties.encodings import ipv4_hosts, ipv6_hosts

pytestmark = pytest.mark.anyio

REFUSED_V4 = [
    IPv4Network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "169.254.169.254/32",
        "100.100.100.200/32",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "192.0.2.0/24",
        "198.18.0.0/15",
    )
]
REFUSED_V6 = [
    IPv6Network(n) for n in ("::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "::/128", "ff00::/8")
]
#: How an IPv4 address rides in IPv6: mapped, NAT64, 6to4 (and compatible, below).
WRAPPERS = [
    lambda v4: IPv6Address((0xFFFF << 32) | int(v4)),
    lambda v4: IPv6Address((0x64FF9B << 96) | int(v4)),
    lambda v4: IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1),
]
SETTINGS = settings(max_examples=400 * scale(), deadline=None, database=None)


def addresses_in(networks: list[IPv4Network] | list[IPv6Network]) -> st.SearchStrategy[object]:
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net[i])
    )


private_v4 = addresses_in(REFUSED_V4)
public_v4 = (
    st.integers(0, 2**32 - 1)
    .map(IPv4Address)
    .filter(
        lambda ip: ip.is_global and not ip.is_multicast and not any(ip in n for n in REFUSED_V4)
    )
)


async def no_dns(host: str, port: int) -> list[str]:
    return []


def url(host: str, port: int | None, path: str) -> str:
    return f"http://{host}{'' if port is None else f':{port}'}{path}"


ports = st.none() | st.integers(1, 65535)
paths = st.sampled_from(["/", "", "/latest/meta-data/", "/a2a?x=1"])


async def refused(target: str) -> bool:
    try:
        await check_url(target, UrlPolicy(), resolver=no_dns)
    except InvalidRequest:
        return True
    return False


@SETTINGS
@given(host=private_v4.flatmap(ipv4_hosts), port=ports, path=paths)
async def test_every_spelling_of_an_internal_ipv4_address_is_refused(
    host: str, port: int | None, path: str
) -> None:
    assert await refused(url(host, port, path)), host


@SETTINGS
@given(
    host=st.one_of(
        addresses_in(REFUSED_V6),
        st.tuples(private_v4, st.sampled_from(WRAPPERS)).map(lambda t: t[1](t[0])),
        # IPv4-compatible (::a.b.c.d), deprecated but still parsed
        private_v4.filter(lambda ip: int(ip) > 1).map(lambda ip: IPv6Address(int(ip))),
    ).flatmap(ipv6_hosts),
    port=ports,
    path=paths,
)
async def test_every_spelling_of_an_internal_ipv6_address_is_refused(
    host: str, port: int | None, path: str
) -> None:
    assert await refused(url(host, port, path)), host


@SETTINGS
@given(address=public_v4, data=st.data(), port=ports)
async def test_a_public_address_is_admitted_in_its_canonical_spelling(
    address: IPv4Address, data: st.DataObject, port: int | None
) -> None:
    host = data.draw(ipv4_hosts(address))
    admitted = await check_url(url(host, port, "/a2a"), UrlPolicy(), resolver=no_dns)
    assert admitted == url(str(address), port, "/a2a")


@SETTINGS
@given(address=public_v4, data=st.data())
async def test_a_public_address_mapped_in_ipv6_is_admitted(
    address: IPv4Address, data: st.DataObject
) -> None:
    host = data.draw(ipv6_hosts(WRAPPERS[0](address)))
    await check_url(url(host, None, "/"), UrlPolicy(), resolver=no_dns)


@SETTINGS
@given(address=private_v4.filter(lambda ip: ip in IPv4Network("127.0.0.0/8")), data=st.data())
async def test_the_loopback_policy_admits_loopback_and_still_refuses_metadata(
    address: IPv4Address, data: st.DataObject
) -> None:
    policy = UrlPolicy.loopback()
    await check_url(url(data.draw(ipv4_hosts(address)), 80, "/"), policy, resolver=no_dns)
    metadata = data.draw(ipv4_hosts(IPv4Address("169.254.169.254")))
    with pytest.raises(InvalidRequest):
        await check_url(url(metadata, 80, "/"), policy, resolver=no_dns)


@SETTINGS
@given(
    address=st.one_of(private_v4, public_v4),
    data=st.data(),
    policy=st.sampled_from([UrlPolicy(), UrlPolicy(allow_private=True), UrlPolicy.loopback()]),
)
async def test_the_gateways_check_agrees_with_the_registrys_on_literal_hosts(
    address: IPv4Address, data: st.DataObject, policy: UrlPolicy
) -> None:
    # literal_refusal is what the gateway applies at dispatch (no DNS there).
    host = data.draw(st.one_of(ipv4_hosts(address), ipv6_hosts(WRAPPERS[0](address))))
    target = url(host, 8080, "/")
    try:
        await check_url(target, policy, resolver=no_dns)
    except InvalidRequest:
        assert literal_refusal(target, policy) is not None, target
    else:
        assert literal_refusal(target, policy) is None, target
