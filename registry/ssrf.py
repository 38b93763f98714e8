"""URL policy against server-side request forgery.

The registry later connects to every URL it admits (active health probes, card
fetches), so a registration must not point it at loopback, private networks or
a cloud metadata service. Host literals are read the way libc and browsers read
them (``2130706433``, ``0x7f.1``, ``[::ffff:7f00:1]`` are all 127.0.0.1) and
names are resolved, every address checked. Resolution can change afterwards
(DNS rebinding), so connectors re-check with :func:`is_refused_address`.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from registry.errors import FieldError, InvalidRequest

__all__ = ["Resolver", "UrlPolicy", "check_url", "is_refused_address", "literal_refusal"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP address strings``; the default uses ``getaddrinfo``."""

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class UrlPolicy:
    """Which non-public addresses a URL may reach.

    ``allow_private`` admits loopback, RFC 1918, link-local, CGNAT, ULA and the
    like, but never metadata, unspecified, multicast, broadcast or reserved
    addresses; ``allowed_networks`` admits exactly the ranges it names.
    """

    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def loopback(cls) -> UrlPolicy:
        """The embedded mesh's policy: everything runs on this host."""
        return cls(allowed_networks=(ip_network("127.0.0.0/8"), ip_network("::1/128")))


RESOLVE_TIMEOUT_SECONDS = 5.0
_METADATA_ADDRESSES = frozenset(
    ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
# Names that reach a metadata service without DNS (search domains, /etc/hosts);
# mapped to the metadata address so an allowed network can still admit them.
_METADATA_NAMES = frozenset(
    ("metadata", "metadata.google.internal", "metadata.goog", "instance-data")
)
_LOOPBACK_ADDRESSES = (IPv4Address("127.0.0.1"), IPv6Address("::1"))
_UNSPECIFIED_V4 = IPv4Network("0.0.0.0/8")
_CGNAT = IPv4Network("100.64.0.0/10")
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_SIIT = IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE = IPv6Network("::/96")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_PORT = re.compile(r"[0-9]{1,5}")


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _SIIT or (ip in _COMPATIBLE and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_refused_address(ip: IPAddress, policy: UrlPolicy) -> str | None:
    """Why ``policy`` refuses connecting to ``ip``, or None if it may."""
    if isinstance(ip, IPv6Address) and ip.scope_id:
        ip = IPv6Address(str(ip).partition("%")[0])
    if any(ip in net for net in policy.allowed_networks if net.version == ip.version):
        return None
    if isinstance(ip, IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        reason = is_refused_address(inner, policy)
        return f"{reason} ({inner} wrapped in IPv6)" if reason else None
    # Never legitimate service targets, whatever the policy.
    if ip in _METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_unspecified or ip in _UNSPECIFIED_V4:
        return "unspecified address"
    if ip.is_multicast:
        return "multicast address"
    if ip == IPv4Address("255.255.255.255"):
        return "broadcast address"
    if ip.is_reserved and not ip.is_loopback:
        return "reserved address"
    if ip.is_loopback:
        reason = "loopback address"
    elif ip.is_link_local:
        reason = "link-local address"
    elif ip in _CGNAT:
        reason = "shared address space (CGNAT)"
    elif ip.is_private or (
        isinstance(ip, IPv6Address) and (ip.is_site_local or ip in _NAT64_LOCAL)
    ):
        reason = "private address"
    elif not ip.is_global:
        reason = "non-public address"
    else:
        return None
    return None if policy.allow_private else reason


def _parse_ipv4(host: str) -> IPv4Address | None:
    """Read ``host`` as inet_aton and WHATWG URL do, or None if it is a name.

    A host whose last label is a number is an IPv4 address or an error; parts
    may be decimal, octal (leading 0) or hex (0x), and the last part fills the
    remaining bytes (``127.1``, ``2130706433``).
    """
    labels = host.split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    malformed = ValueError(f"malformed IPv4 address {host!r}")
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise malformed
    try:
        parts = [
            int(p[2:] or "0", 16)
            if p.startswith("0x")
            else int(p, 8 if len(p) > 1 and p[0] == "0" else 10)
            for p in labels
        ]
    except ValueError:  # "08", or more digits than int() will read
        raise malformed from None
    *head, last = parts
    if any(p > 255 for p in head) or last >= 256 ** (5 - len(parts)):
        raise ValueError(f"IPv4 address {host!r} out of range")
    return IPv4Address(sum(p << (8 * (3 - i)) for i, p in enumerate(head)) + last)


def _split_netloc(netloc: str) -> tuple[str, int | None, bool]:
    """``(host, port, bracketed)`` of an authority without userinfo."""
    if netloc.startswith("["):
        host, sep, rest = netloc[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("malformed IPv6 literal")
        port_text, bracketed = rest[1:], True
    else:
        host, _, port_text = netloc.partition(":")
        bracketed = False
        if ":" in port_text:
            raise ValueError("IPv6 addresses must be in brackets")
    if not port_text:
        return host, None, bracketed
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be 1..65535, not {port_text!r}")
    return host, int(port_text), bracketed


def _normalise_name(host: str) -> str:
    if not host.isascii():
        # IDNA also folds full-width digits and dots, as browsers do.
        host = host.encode("idna").decode("ascii")
    host = host.lower().removesuffix(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"invalid host name {host!r}")
    return host


async def _default_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


async def _addresses(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    if host == "localhost" or host.endswith(".localhost"):
        return list(_LOOPBACK_ADDRESSES)  # RFC 6761: never sent to DNS
    if host in _METADATA_NAMES or host.endswith(".metadata.google.internal"):
        return [IPv4Address("169.254.169.254")]
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await resolver(host, port)
        return [ip_address(a) for a in found]
    except (OSError, UnicodeError, ValueError, TimeoutError):
        return []


async def check_url(
    url: str, policy: UrlPolicy, *, field: str = "url", resolver: Resolver | None = None
) -> str:
    """Admit ``url`` under ``policy`` and return it normalised, or raise InvalidRequest."""

    def refuse(message: str) -> InvalidRequest:
        return InvalidRequest(f"{field}: {message}", errors=[FieldError(field, message)])

    if any(c == "\\" or c.isspace() or not c.isprintable() for c in url):
        raise refuse("URL contains a backslash, whitespace or control character")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise refuse(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise refuse(f"scheme must be http or https, not {scheme or 'none'!r}")
    if "#" in url:
        raise refuse("a service URL has no fragment")
    if "@" in parts.netloc:
        raise refuse("URL must not contain userinfo (user@ or user:password@)")
    if "%" in parts.netloc:
        raise refuse("host must not be percent-encoded")
    try:
        raw_host, port, bracketed = _split_netloc(parts.netloc)
        if not raw_host:
            raise ValueError("URL has no host")
        ip: IPAddress | None
        if bracketed:
            try:
                ip = IPv6Address(raw_host)
            except ValueError as exc:
                raise ValueError(f"invalid IPv6 literal: {exc}") from None
            host = f"[{ip.compressed}]"
        else:
            name = _normalise_name(raw_host)
            ip = _parse_ipv4(name)
            host = str(ip) if ip else name
    except (ValueError, UnicodeError) as exc:
        raise refuse(str(exc) or "malformed host") from None

    default_port = 443 if scheme == "https" else 80
    if ip is not None:
        addresses: list[IPAddress] = [ip]
    else:
        addresses = await _addresses(host, port or default_port, resolver or _default_resolver)
        if not addresses:
            raise refuse(f"host {host!r} does not resolve")
    for address in addresses:
        if reason := is_refused_address(address, policy):
            via = "" if ip is not None else f" resolves to {address}"
            raise refuse(f"host {host!r}{via}: {reason}, refused by the URL policy")

    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def literal_refusal(url: str, policy: UrlPolicy) -> str | None:
    """Why ``policy`` refuses the address ``url``'s host spells; None for a name it admits.

    For a connector holding a URL that was admitted elsewhere (a gateway routing
    what a registry lists, perhaps written to the store directly): no DNS, so it
    never blocks; literal addresses in any spelling, ``localhost`` and the
    metadata names are judged as :func:`check_url` judges them, and a host that
    cannot be read is refused.
    """
    try:
        raw_host, _, bracketed = _split_netloc(urlsplit(url).netloc)
        if not raw_host:
            raise ValueError("no host")
        if bracketed:
            addresses: list[IPAddress] = [IPv6Address(raw_host)]
        else:
            name = _normalise_name(raw_host)
            ip = _parse_ipv4(name)
            if ip is not None:
                addresses = [ip]
            elif name == "localhost" or name.endswith(".localhost"):
                addresses = list(_LOOPBACK_ADDRESSES)
            elif name in _METADATA_NAMES or name.endswith(".metadata.google.internal"):
                addresses = [IPv4Address("169.254.169.254")]
            else:
                return None
    except (ValueError, UnicodeError) as exc:
        return f"unreadable host ({exc})"
    reasons = (is_refused_address(ip, policy) for ip in addresses)
    return next((r for r in reasons if r), None)
