"""Spellings of an internal address as a URL host, enumerated (no randomness).

Each is a way some parser reads as the address: ``inet_aton``'s 1 to 4 parts in
decimal, octal or hex (mixed, zero-padded, upper case), a trailing dot,
full-width digits (IDNA folds them), IPv4 in IPv6 (mapped, compatible, NAT64,
6to4) written compressed, expanded, padded or dotted, and names that resolve
to it.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address, IPv6Address

__all__ = ["ipv4_spellings", "ipv6_spellings", "spellings"]

_RADIXES = ("dec", "oct", "oct0", "hex", "HEX", "hex0")
# Full-width digits and full stop (U+FF10..U+FF19, U+FF0E), which IDNA folds to ASCII.
_FULL_WIDTH = {ord(c): 0xFF10 + int(c) for c in "0123456789"} | {ord("."): 0xFF0E}


def _spell(value: int, radix: str) -> str:
    if radix == "dec":
        return str(value)
    if radix == "oct":
        return "0" + format(value, "o")
    if radix == "oct0":
        return "000" + format(value, "o")
    if radix == "hex":
        return "0x" + format(value, "x")
    if radix == "HEX":
        return "0X" + format(value, "X")
    return "0x00" + format(value, "x")


def ipv4_spellings(address: IPv4Address) -> list[str]:
    """Every 1-, 2-, 3- and 4-part form of ``address``, in each radix and some mixes."""
    octets = list(address.packed)
    value = int(address)
    found: list[str] = []
    for parts in (1, 2, 3, 4):
        head = octets[: parts - 1]
        last = value & ((1 << (8 * (5 - parts))) - 1)
        for radix in _RADIXES:  # all parts in one radix
            found.append(".".join([*(_spell(p, radix) for p in head), _spell(last, radix)]))
        if parts > 1:  # the head in one radix, the last part in another
            for a, b in itertools.permutations(("dec", "oct", "hex"), 2):
                found.append(".".join([*(_spell(p, a) for p in head), _spell(last, b)]))
    for pattern in itertools.islice(itertools.product(("dec", "oct", "hex"), repeat=4), 0, 81, 4):
        found.append(".".join(_spell(o, r) for o, r in zip(octets, pattern, strict=True)))
    found += [str(address) + ".", str(address).translate(_FULL_WIDTH)]
    return list(dict.fromkeys(found))


def ipv6_spellings(address: IPv4Address) -> list[str]:
    """``address`` carried in IPv6, in bracketed literal forms."""
    v4 = int(address)
    wrapped = [
        IPv6Address((0xFFFF << 32) | v4),  # mapped
        IPv6Address(v4),  # compatible
        IPv6Address((0x64FF9B << 96) | v4),  # NAT64
        IPv6Address((0x2002 << 112) | (v4 << 80) | 1),  # 6to4
        IPv6Address((0xFFFF << 48) | (v4)),  # SIIT ::ffff:0:a.b.c.d
    ]
    found: list[str] = []
    for ip in wrapped:
        groups = ip.exploded.split(":")
        dotted = ":".join(groups[:6]) + ":" + str(IPv4Address(int(ip) & 0xFFFFFFFF))
        padded = ":".join(g.lstrip("0").zfill(2) for g in groups)
        for text in (ip.compressed, ip.exploded, padded, dotted, dotted.replace("0000", "0")):
            found += [f"[{text}]", f"[{text.upper()}]"]
    return list(dict.fromkeys(found))


def spellings(address: IPv4Address) -> list[str]:
    return ipv4_spellings(address) + ipv6_spellings(address)
