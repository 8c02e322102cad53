"""Connections kept alive per origin: httpcore's pool and HTTP/1.1 connection, one pool per origin.

httpcore parses (h11, a 100 KiB head at most), times out, queues and frees slots on a cancel; this
module adds what it lacks, each held by tests/test_http_pool.py:

- one small pool per origin (scheme, host, port), found by a dict lookup: httpcore's single pool
  scans every connection it holds for each request, quadratic with hundreds of hosts (measured:
  50 requests/s instead of 700); at most 8 connections per origin, kept alive for 15 s;
  past 256 origins, those idle for 15 s with nothing in flight are closed and forgotten;
- a connection is never reused after an answer framed by both Content-Length and chunked (RFC 9112
  §6.3 (3): a possible smuggling attempt), nor after an answer that was already waiting before
  its request went out (bytes after the previous response): an extra response is never read as
  the answer to another request;
- a kept-alive connection that the server had closed before a byte of the answer costs no error:
  the GET goes again on another connection (RFC 9110 §9.2.2); a new connection that closes so
  is an error.

Every new connection is opened through the given backend (the SSRF guard), HTTPS with the given
SSL context. Redirects are :mod:`.http`'s, body caps and decoding :mod:`.hop`'s. No HTTP/2.
Why not our own h11 pool and asyncio transport any more: docs/architecture.md ("HTTP"), measured
by ``benchmarks/httppool.py``.
"""

from __future__ import annotations

import ssl
import time
import typing
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import httpcore

__all__ = ["Origin", "OriginPools"]

_PER_ORIGIN_CONNECTIONS = 8
# As many kept alive as in use: httpcore 1.0 compares its keep-alive limit with all connections,
# not the idle ones (encode/httpcore#1000), so a lower limit closes each connection that goes
# idle while more than that many are open: under load, a new connection per request.
_PER_ORIGIN_KEEPALIVE = _PER_ORIGIN_CONNECTIONS
_KEEPALIVE_EXPIRY = 15.0
_MAX_HEAD_BYTES = httpcore.AsyncHTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE  # httpcore's (100 KiB)
_ATTEMPTS = _PER_ORIGIN_KEEPALIVE + 1  # each stale kept-alive connection is dropped when met
_HUNG_UP = "Server disconnected without sending a response."  # httpcore's words


@dataclass
class _Pool:
    pool: Origin
    active: int = 0
    used: float = 0.0


class OriginPools:
    """One small connection pool per origin; idle ones are closed and forgotten (bounded memory)."""

    def __init__(self, make: Callable[[], Origin]) -> None:
        self._make = make
        self._pools: dict[tuple[bytes, bytes, int | None], _Pool] = {}
        self._sweep_at = 256

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        entry = await self._entry((request.url.scheme, request.url.host, request.url.port))
        entry.active += 1
        entry.used = time.monotonic()
        try:
            response = await entry.pool.handle_async_request(request)
        except BaseException:
            entry.active -= 1
            raise
        response.stream = _Released(response.stream, entry)
        return response

    async def _entry(self, key: tuple[bytes, bytes, int | None]) -> _Pool:
        entry = self._pools.get(key)
        if entry is None:
            entry = self._pools[key] = _Pool(self._make(), used=time.monotonic())
            if len(self._pools) > self._sweep_at:
                await self._sweep()
        return entry

    async def _sweep(self) -> None:
        """Unhook idle pools first, then close them: no request can pick one up meanwhile."""
        horizon = time.monotonic() - _KEEPALIVE_EXPIRY
        idle = [k for k, e in self._pools.items() if e.active == 0 and e.used < horizon]
        closing = [self._pools.pop(key) for key in idle]
        self._sweep_at = max(256, 2 * len(self._pools))
        for entry in closing:
            await entry.pool.aclose()

    @property
    def size(self) -> int:
        return len(self._pools)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for entry in pools:
            await entry.pool.aclose()

    async def __aenter__(self) -> OriginPools:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Released:
    """A response stream that gives its pool back (for the sweep) when it is closed."""

    def __init__(self, stream: Iterable[bytes] | AsyncIterable[bytes], entry: _Pool) -> None:
        self._stream = stream
        self._entry: _Pool | None = entry

    def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, AsyncIterable)
        return aiter(self._stream)

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._stream, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            if self._entry is not None:
                self._entry.active -= 1
                self._entry = None


class Origin:
    """One origin's connections: httpcore's pool, under the reuse rules it lacks (module doc)."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=_PER_ORIGIN_CONNECTIONS,
            max_keepalive_connections=_PER_ORIGIN_KEEPALIVE,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
            network_backend=_Watching(backend),
        )

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """The answer to ``request``, read on a connection fit to give it.

        Every connection found stale (closed by the server) or holding an answer before the
        request went out is dropped and the request sent again on another one, at most
        ``_ATTEMPTS`` times: more than the connections the pool keeps alive.
        """
        for _ in range(_ATTEMPTS):
            response = await self._attempt(request)
            if response is not None:
                return response
        raise httpcore.RemoteProtocolError(_HUNG_UP)  # only if others kept leaving stale ones

    async def _attempt(self, request: httpcore.Request) -> httpcore.Response | None:
        """The answer, or None if its connection was not fit to give one (and is dropped)."""
        try:
            response = await self._pool.handle_async_request(request)
        except _Stale:
            return None
        stream = response.extensions.get("network_stream")
        if isinstance(stream, _Watched):
            if stream.answered_early():
                stream.retire()
                await response.aclose()
                return None
            if _ambiguous(response):
                stream.retire()  # the body is still read; the connection is closed afterwards
        return response

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Stale(httpcore.ReadError):
    """A kept-alive connection turned out closed before a byte of the answer: send again."""


class _Watched(httpcore.AsyncNetworkStream):
    """A connection's stream that knows whether the current answer came after its request.

    ``mark`` is the count of bytes received when the latest request was written: on a kept-alive
    connection (``mark`` > 0) an answer must begin with bytes read after it. Retired, the stream
    reads as closed to httpcore's pool, which then drops the connection instead of reusing it.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._received = 0
        self._mark = 0
        self._retired = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        stale = self._mark > 0 and self._received == self._mark
        try:
            data = await self._inner.read(max_bytes, timeout)
        except httpcore.ReadError:
            if stale:
                raise _Stale from None
            raise
        if stale and not data:
            raise _Stale
        self._received += len(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._mark = self._received
        await self._inner.write(buffer, timeout)

    def answered_early(self) -> bool:
        """The answer to the latest request was read before it went out: not its answer."""
        return self._mark > 0 and self._received == self._mark

    def retire(self) -> None:
        self._retired = True

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Watched(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable" and self._retired:
            return True  # what httpcore's pool reads as "closed by the server": never reused
        return self._inner.get_extra_info(info)


class _Watching(httpcore.AsyncNetworkBackend):
    """The guard's backend, handing out watched streams."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Watched(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _ambiguous(response: httpcore.Response) -> bool:
    """A body framed by both Transfer-Encoding and Content-Length: h11 reads it chunked, but
    RFC 9112 §6.3 (3) sees a possible smuggling or splitting attempt: the connection is dropped.
    204 and 304 have no body whatever the headers say (and 304s, most answers, are not scanned).
    """
    if response.status in (204, 304):
        return False
    names = {name.lower() for name, _ in response.headers}
    return b"transfer-encoding" in names and b"content-length" in names
