"""Bounded Content-Encoding decoding (gzip, deflate); pure, no I/O, never inflates past a limit.

zlib's ``max_length`` stops a call once it has produced that many bytes, so a gzip or deflate
bomb costs at most the caller's remaining room in memory, whatever its ratio.
"""

from __future__ import annotations

import zlib

__all__ = ["InflateError", "Inflater"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS
_IDENTITY = frozenset({"", "identity"})
_KNOWN = frozenset({"gzip", "x-gzip", "deflate"})


class InflateError(Exception):
    """The body's encoding is unknown or its compressed data is corrupt."""


class Inflater:
    """Decodes one response body, chunk by chunk, returning at most ``limit`` bytes per feed.

    A call that returns exactly ``limit`` bytes may have left input undecoded: callers pass
    their remaining room plus one, and treat a full answer as "over the cap".
    """

    def __init__(self, content_encoding: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c not in _IDENTITY]
        if len(codings) > 1 or (codings and codings[0] not in _KNOWN):
            raise InflateError(f"unsupported Content-Encoding {content_encoding!r}")
        self._coding = codings[0] if codings else ""
        self._obj: zlib._Decompress | None = None
        self._pending = b""  # deflate: the first bytes, until zlib vs raw is decidable
        self._done = False

    @property
    def identity(self) -> bool:
        return not self._coding

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode ``data``; return at most ``limit`` bytes (``limit`` reached: stop reading)."""
        if limit <= 0:
            return b""
        if self.identity:
            return data[:limit]
        if self._obj is None:
            data = self._start(self._pending + data)
            if self._obj is None:
                return b""
        try:
            return self._inflate(data, limit)
        except zlib.error as exc:
            raise InflateError(f"corrupt {self._coding} body ({exc})") from None

    def _start(self, data: bytes) -> bytes:
        """Pick the decoder; deflate is zlib-wrapped by the RFC but often raw in the wild."""
        if self._coding != "deflate":
            self._obj = zlib.decompressobj(_GZIP_WBITS)
            return data
        if len(data) < 2:
            self._pending = data
            return b""
        wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
        self._obj = zlib.decompressobj(_ZLIB_WBITS if wrapped else _RAW_WBITS)
        self._pending = b""
        return data

    def _inflate(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        while data and not self._done and len(out) < limit:
            assert self._obj is not None
            out += self._obj.decompress(data, limit - len(out))
            data = self._obj.unconsumed_tail
            if self._obj.eof:
                data = self._next_member()
        return bytes(out)

    def _next_member(self) -> bytes:
        """gzip allows several members back to back (RFC 1952 §2.2); anything else ends it."""
        assert self._obj is not None
        rest = self._obj.unused_data
        if self._coding == "deflate" or not rest.startswith(b"\x1f\x8b"):
            self._done = True  # trailing garbage after the stream is ignored, as browsers do
            return b""
        self._obj = zlib.decompressobj(_GZIP_WBITS)
        return rest
