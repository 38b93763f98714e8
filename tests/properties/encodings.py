"""Spellings of one IPv4 or IPv6 address as a URL host, the ways parsers read them.

libc's ``inet_aton`` and the WHATWG URL parser take 1 to 4 dot-separated parts,
each decimal, octal (leading ``0``) or hex (``0x``), the last one filling the
remaining bytes (``127.1``, ``2130706433``, ``0x7f.0.0.1``). IPv6 literals may
embed an IPv4 address (mapped, compatible, NAT64, 6to4) and be written
expanded, compressed, with leading zeros or in upper case.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

__all__ = ["ipv4_hosts", "ipv6_hosts", "spell_number"]


@st.composite
def spell_number(draw: st.DrawFn, value: int) -> str:
    """``value`` in decimal, octal or hex, with optional extra leading zeros and case."""
    radix = draw(st.sampled_from(["dec", "oct", "hex"]))
    zeros = "0" * draw(st.integers(0, 3))
    if radix == "dec":
        return str(value)  # a leading zero would make it octal
    if radix == "oct":
        return "0" + zeros + format(value, "o")
    digits = zeros + format(value, "x")
    return draw(st.sampled_from(["0x", "0X"])) + (digits.upper() if draw(st.booleans()) else digits)


@st.composite
def ipv4_hosts(draw: st.DrawFn, address: IPv4Address) -> str:
    """One host spelling of ``address``: 1 to 4 parts, each in any radix."""
    value = int(address)
    octets = list(address.packed)
    parts_count = draw(st.integers(1, 4))
    head = octets[: parts_count - 1]
    rest = len(octets) - len(head)
    last = value & ((1 << (8 * rest)) - 1)
    parts = [draw(spell_number(p)) for p in head] + [draw(spell_number(last))]
    host = ".".join(parts)
    return host + "." if draw(st.booleans()) and parts_count == 4 else host


@st.composite
def ipv6_hosts(draw: st.DrawFn, address: IPv6Address) -> str:
    """One bracketed spelling of ``address``: compressed, expanded, zero-padded, any case."""
    form = draw(st.sampled_from(["compressed", "exploded", "padded", "dotted"]))
    if form == "compressed":
        text = address.compressed
    elif form == "exploded":
        text = address.exploded
    elif form == "padded":
        text = ":".join(
            format(int(g, 16), "x").zfill(draw(st.integers(1, 4)))
            for g in address.exploded.split(":")
        )
    else:
        groups = address.exploded.split(":")
        tail = IPv4Address(int(address) & 0xFFFFFFFF)
        text = ":".join(groups[:6]) + ":" + str(tail)
    return "[" + (text.upper() if draw(st.booleans()) else text) + "]"
