"""SSRF guard: vets every resolved address at connect time; it must never connect to an unvetted IP.

The check runs inside the connection pool's network backend, after DNS resolution, so DNS
rebinding cannot slip a private address past it, and it runs for every redirect hop because every
hop opens (or reuses a vetted) connection. ``ipaddress.is_global`` alone is not enough: it accepts
the NAT64 and 6to4 forms of 127.0.0.1, so embedded IPv4 addresses are unpacked and checked too.

The vetted address is connected to by httpcore's own backend (anyio). This module does not import
httpx; it speaks httpcore's backend protocol only.
"""

from __future__ import annotations

import ipaddress
import socket
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
        self._inner = inner or httpcore.AnyIOBackend()

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
