"""The one canonical form of a request path, used by every routing and auth decision.

Rules (``normalize_path`` returns ``None``, answered 400, for a path it refuses):

* The raw path (``scope["raw_path"]``, bytes, no query) must start with ``/``.
* Raw control bytes (0x00-0x1f, 0x7f), backslashes, ``?`` and ``#`` are refused.
* Segments are split on raw ``/`` first, then percent-decoded once. A segment
  whose decoded form holds ``/``, ``\\``, ``?``, ``#``, ``%`` (double encoding)
  or a control character is refused, and so is a bad escape or invalid UTF-8:
  no name the gateway routes contains them, and decoding them would let the
  gateway and an upstream read one path two ways.
* Empty segments (``//``) are merged, ``.`` dropped, ``..`` removes the
  previous segment (as nginx does; decoded ``%2e%2e`` counts too); ``..`` above
  the root is refused.
* No trailing slash (except for ``/`` itself): ``/a2a/x/`` is ``/a2a/x``.
* Case is kept. Paths are case-sensitive: ``/A2A/x`` is a different path that
  no route matches (404). It cannot bypass authentication, because only the
  exact canonical public paths skip it; every other path, whatever its case,
  is authenticated first.
* ``;`` has no meaning (no path parameters): ``x;y`` is one literal segment.
* Unicode is kept as decoded (valid UTF-8, no normalisation form applied).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote

__all__ = ["encode_path", "normalize_path"]

# A path that is already canonical: unreserved/sub-delim segments, none empty,
# none "." or "..", no trailing slash. Such paths skip the slow path.
_CANONICAL = re.compile(rb"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9._~!$&'()*+,;=:@-]+)+")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_REFUSED_RAW = frozenset(b"\\?#\x7f" + bytes(range(32)))
_REFUSED_DECODED = frozenset("/\\?#%\x7f" + "".join(chr(c) for c in range(32)))
# Characters left as they are when a canonical path is encoded again.
_SAFE = "/._~!$&'()*+,;=:@-"


@functools.lru_cache(maxsize=4096)
def normalize_path(raw_path: bytes) -> str | None:
    """The canonical form of ``raw_path``, or ``None`` to refuse it (400).

    Cached (bounded): every request asks, and clients repeat their paths.
    """
    if _CANONICAL.fullmatch(raw_path):
        return raw_path.decode("ascii")
    # The common "/a2a/agent/": canonical but for its trailing slash.
    if raw_path[-1:] == b"/" and _CANONICAL.fullmatch(raw_path, 0, len(raw_path) - 1):
        return raw_path[:-1].decode("ascii")
    if raw_path == b"/":
        return "/"
    if not raw_path.startswith(b"/") or not _REFUSED_RAW.isdisjoint(raw_path):
        return None
    out: list[str] = []
    for raw in raw_path.split(b"/"):
        if not raw:
            continue
        segment = _decode(raw)
        if segment is None:
            return None
        if segment == ".":
            continue
        if segment == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out)


def _decode(raw: bytes) -> str | None:
    if b"%" in raw:
        buf = bytearray()
        i, n = 0, len(raw)
        while i < n:
            byte = raw[i]
            if byte != 0x25:  # "%"
                buf.append(byte)
                i += 1
                continue
            if i + 2 >= n:
                return None
            hi, lo = raw[i + 1], raw[i + 2]
            if hi not in _HEX or lo not in _HEX:
                return None
            buf.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        raw = bytes(buf)
    try:
        segment = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not _REFUSED_DECODED.isdisjoint(segment):
        return None
    return segment


@functools.lru_cache(maxsize=4096)
def encode_path(path: str) -> str:
    """Percent-encode a canonical path again (for ``raw_path`` and upstream URLs); cached."""
    if path.isascii() and _CANONICAL.fullmatch(path.encode("ascii")):
        return path  # nothing to escape (the pattern's characters are all safe)
    return quote(path, safe=_SAFE)
