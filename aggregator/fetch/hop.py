"""One hop's answer read off its stream: headers decoded, the body inflated and capped as it comes.

Kept apart from :mod:`.http` (which sends requests and follows redirects) because it is the part
that must hold against hostile bodies: the body is decompressed by hand from the raw stream, so
that the cap acts on decoded bytes before a gzip bomb is inflated, and a redirect's or a 304's
body is read to its end (up to 64 KiB) only so that its connection can serve the next request.
It reads any async stream of bytes: no httpx, no httpcore.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass

from aggregator.errors import FetchError
from aggregator.fetch.inflate import InflateError, Inflater
from aggregator.fetch.response import REDIRECT_STATUSES, size_text

__all__ = ["Cap", "Hop", "read_hop"]

_DRAIN_BYTES = 65536  # a redirect's body is read (and dropped) up to this, to reuse its connection


@dataclass(frozen=True, slots=True)
class Cap:
    """The most decoded bytes a body may have; past it, an error, or the first ``limit`` bytes."""

    limit: int
    truncate: bool


@dataclass(frozen=True, slots=True)
class Hop:
    """One answer: status, headers (lower-case names) and the decoded body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def location(self) -> str | None:
        """Where a redirect points (None for any other answer, or one without a Location)."""
        if self.status not in REDIRECT_STATUSES:
            return None
        return next((v for k, v in self.headers if k == "location" and v.strip()), None)

    def header(self, name: str) -> str:
        """A header's values joined by ", " (as httpx's ``get``: two encodings read as stacked)."""
        return ", ".join(v for k, v in self.headers if k == name)


async def read_hop(
    status: int,
    raw_headers: Iterable[tuple[bytes, bytes]],
    stream: AsyncIterable[bytes],
    cap: Cap,
    where: str,
) -> Hop:
    """The answer, its body read unless it is a redirect or a 304 (then drained, and empty)."""
    hop = Hop(status, _decoded(list(raw_headers)), b"")
    if hop.location() is not None or status == 304:
        await _drain(stream)  # nothing in it is used; read to the end, the connection is reused
        return hop
    return Hop(status, hop.headers, await _read_body(stream, hop, cap, where))


async def _drain(stream: AsyncIterable[bytes]) -> None:
    """Read and drop up to _DRAIN_BYTES; a longer body makes the pool close the connection."""
    left = _DRAIN_BYTES
    async for chunk in stream:
        left -= len(chunk)
        if left < 0:
            return


async def _read_body(stream: AsyncIterable[bytes], hop: Hop, cap: Cap, where: str) -> bytes:
    """The decoded body, refused (or cut) as soon as it would exceed the cap."""
    try:
        inflater = Inflater(hop.header("content-encoding"))
    except InflateError as exc:
        raise FetchError(f"{exc} for {where}") from None
    declared = hop.header("content-length")
    limit = cap.limit
    if inflater.identity and declared.isdigit() and int(declared) > limit and not cap.truncate:
        raise FetchError(
            f"body of {int(declared)} bytes exceeds {size_text(limit)} cap for {where}"
        )
    body = bytearray()
    try:
        async for chunk in stream:
            body += inflater.feed(chunk, limit + 1 - len(body))
            if len(body) > limit and cap.truncate:
                return bytes(body[:limit])
            if len(body) > limit:
                raise FetchError(f"body exceeds {size_text(limit)} cap for {where}")
    except InflateError as exc:
        raise FetchError(f"{exc} for {where}") from None
    return bytes(body)


def _decoded(raw: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """Lower-case names; ASCII, else UTF-8, else Latin-1 for the whole set, as httpx decodes."""
    if all(k.isascii() and v.isascii() for k, v in raw):
        encoding = "ascii"
    else:
        try:
            for k, v in raw:
                k.decode(), v.decode()
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "latin-1"
    return tuple((k.decode(encoding).lower(), v.decode(encoding)) for k, v in raw)
