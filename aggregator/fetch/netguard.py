"""SSRF guard: vets every resolved address at connect time; it must never connect to an unvetted IP.

The check runs inside the connection pool's network backend, after DNS resolution, so DNS
rebinding cannot slip a private address past it, and it runs for every redirect hop because every
hop opens (or reuses a vetted) connection. ``ipaddress.is_global`` alone is not enough: it accepts
the NAT64 and 6to4 forms of 127.0.0.1, so embedded IPv4 addresses are unpacked and checked too.

It connects through :class:`AsyncioBackend`, a thin asyncio protocol under httpcore's stream API:
anyio's streams open a cancel scope for every read and write, a large share of a request's CPU.

This module does not import httpx; it speaks httpcore's backend protocol only.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import re
import socket
import ssl
import typing
from collections.abc import Callable, Iterable, Sequence

import anyio.to_thread
import httpcore

from aggregator.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> addresses``; called in a worker thread, may raise OSError."""

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# IANA special-purpose registries (RFC 6890 and successors); the first match names the reason.
_FORBIDDEN_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "IETF protocol assignment"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "6to4 relay"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)
_FORBIDDEN_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "IPv4-compatible (deprecated)"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("fc00::/7"), "unique local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)
_NAT64 = _V6("64:ff9b::/96")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")  # canonical: no leading zeros


class BlockedAddress(FetchError):
    """The guard refused to connect; raised from inside the pool, re-worded by the HTTP client."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host, self.address, self.reason = host, address, reason
        super().__init__(f"blocked address {address} ({reason}) for host {host}")


ALLOW_HINT = "; allow it with http.allowed_networks"
"""Ends every guard refusal: the setting that lets a trusted private network through."""


class BlockedFetch(FetchError):
    """A request the guard refused, as the HTTP client reports it (the URL, the hop, the hint).

    Its own class so that a caller (the robots.txt cache) reports "blocked", never a verdict.
    """


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The allow-list from the settings; config validation already refused bad CIDRs."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_forbidden(ip: str, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why connecting to ``ip`` is refused, or None if it is a public address (or allow-listed)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if _allowed(addr, allowed):
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_reason(addr)
    embedded = _embedded_v4(addr)
    if embedded is not None:
        kind, v4 = embedded
        inner = None if _allowed(v4, allowed) else _v4_reason(v4)
        return f"{kind} {inner}" if inner else None
    return _v6_reason(addr)


def _allowed(addr: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    return any(addr.version == net.version and addr in net for net in allowed)


def _v4_reason(addr: ipaddress.IPv4Address) -> str | None:
    for net, reason in _FORBIDDEN_V4:
        if addr in net:
            return reason
    return None if addr.is_global else "not globally routable"


def _v6_reason(addr: ipaddress.IPv6Address) -> str | None:
    for net, reason in _FORBIDDEN_V6:
        if addr in net:
            return reason
    return None if addr.is_global else "not globally routable"


def _embedded_v4(addr: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo client), if any."""
    if addr.ipv4_mapped is not None:
        return "IPv4-mapped", addr.ipv4_mapped
    if addr in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return "6to4", addr.sixtofour
    if addr.teredo is not None:
        return "Teredo", addr.teredo[1]
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo: it reads odd IPv4 literals (127.1, 2130706433, 0x7f000001) as libc does."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, vets every address, then connects to a vetted IP.

    The TLS server name and the Host header come from the request's origin, not from the address
    connected to, so https keeps working against the hostname's certificate.
    """

    def __init__(
        self,
        *,
        guard: bool,
        allowed: Sequence[IPNetwork] = (),
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._guard = guard
        self._allowed = tuple(allowed)
        self._resolver = resolver or system_resolver
        self._inner = inner or AsyncioBackend()

    async def vetted_addresses(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, refused as a whole if any one is forbidden."""
        addresses = await self._resolve(host, port)
        if self._guard:
            for address in addresses:
                reason = is_forbidden(address, self._allowed)
                if reason is not None:
                    raise BlockedAddress(host, address, reason)
        return addresses

    async def _resolve(self, host: str, port: int) -> list[str]:
        if _DOTTED_QUAD.fullmatch(host):  # already as ip_address would write it: no parsing
            return [host]
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        try:
            addresses = await anyio.to_thread.run_sync(self._resolver, host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        return list(addresses)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.vetted_addresses(host, port)
        last = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # try the next address, as happy eyeballs would
                last = exc
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)



_HIGH_WATER = 256 * 1024  # bytes buffered before the socket stops being read (bounded memory)


class _Inbox(asyncio.Protocol):
    """What arrived on one connection until it is read; wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.eof = False
        self.error: Exception | None = None
        self.paused = False
        self.waiter: asyncio.Future[bool] | None = None
        self.drained: asyncio.Future[bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        _settle(self.waiter, True)

    def eof_received(self) -> bool:
        self.eof = True
        _settle(self.waiter, True)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        _settle(self.waiter, True)
        _settle(self.drained, True)

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        _settle(self.drained, True)
        self.drained = None

    def take(self, max_bytes: int) -> bytes:
        data = self.chunks.popleft()
        if len(data) > max_bytes:
            self.chunks.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        self.size -= len(data)
        if self.paused and self.size <= _HIGH_WATER // 4 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


def _settle(future: asyncio.Future[bool] | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


async def _wait(future: asyncio.Future[bool], timeout: float | None) -> bool:
    """True once woken; False if ``timeout`` passed first (a cancel of the caller still raises)."""
    if timeout is None:
        return await future
    timer = asyncio.get_running_loop().call_later(timeout, _settle, future, False)
    try:
        return await future
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """httpcore's stream API over an asyncio transport, with httpcore's exceptions."""

    def __init__(self, transport: asyncio.Transport, inbox: _Inbox) -> None:
        self._transport = transport
        self._inbox = inbox

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        inbox = self._inbox
        while not inbox.chunks:
            if inbox.error is not None:
                raise httpcore.ReadError(str(inbox.error) or type(inbox.error).__name__)
            if inbox.eof:
                return b""
            inbox.waiter = asyncio.get_running_loop().create_future()
            try:
                if not await _wait(inbox.waiter, timeout):
                    raise httpcore.ReadTimeout(f"no data for {timeout:g}s")
            finally:
                inbox.waiter = None
        return inbox.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._transport.is_closing() or self._inbox.eof:
            raise httpcore.WriteError("connection closed")
        self._transport.write(buffer)
        drained = self._inbox.drained
        if drained is not None and not await _wait(drained, timeout):
            raise httpcore.WriteTimeout(f"cannot write for {timeout:g}s")

    async def aclose(self) -> None:
        self._transport.abort()  # nothing is left to send; a TLS close_notify is not awaited

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._inbox, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake took over {timeout:g}s") from None
        except OSError as exc:  # ssl.SSLError among them
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        assert transport is not None
        self._inbox.transport = transport
        return AsyncioStream(transport, self._inbox)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":  # an idle connection with news has been closed or broken
            return bool(self._inbox.chunks) or self._inbox.eof
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        return self._transport.get_extra_info(name)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connects to an IP address (the guard has vetted it) with a plain asyncio transport."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, inbox = await loop.create_connection(
                    _Inbox, host, port, local_addr=local
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout:g}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, inbox)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
