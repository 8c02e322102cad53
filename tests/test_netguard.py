"""The SSRF guard's pure verdict, table-driven over DESIGN.md's bad addresses and disguises."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.fetch.netguard import _DOTTED_QUAD, GuardedBackend, is_forbidden, parse_networks

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's

FORBIDDEN = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "100.100.100.200": "carrier-grade NAT",
    "100.64.0.1": "carrier-grade NAT",
    "192.0.0.8": "IETF protocol assignment",
    "192.0.2.1": "documentation",
    "198.18.0.1": "benchmarking",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "::": "unspecified",
    "::1": "loopback",
    "::127.0.0.1": "IPv4-compatible (deprecated)",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "64:ff9b::7f00:1": "NAT64 loopback",
    "64:ff9b::a9fe:a9fe": "NAT64 link-local",
    "64:ff9b:1::1": "local-use NAT64",
    "2002:7f00:1::1": "6to4 loopback",
    "2002:a00:1::": "6to4 private",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo loopback",  # client 127.0.0.1, obfuscated
    "fd00::1": "unique local",
    "fc00::1": "unique local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "100::1": "discard-only",
    "2001:db8::1": "documentation",
}

PUBLIC = [
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of a public address: what DNS64 networks hand out
    "2002:808:808::1",
]


@pytest.mark.parametrize(("ip", "reason"), sorted(FORBIDDEN.items()))
def test_forbidden_addresses_name_their_reason(ip: str, reason: str) -> None:
    assert is_forbidden(ip) == reason


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass(ip: str) -> None:
    assert is_forbidden(ip) is None


@pytest.mark.parametrize("ip", ["", "localhost", "127.1", "2130706433", "::zz", "1.2.3.4.5"])
def test_what_is_not_an_ip_is_forbidden(ip: str) -> None:
    """Names and odd literals must be resolved first; the verdict never guesses."""
    assert is_forbidden(ip) == "not an IP address"


def test_is_global_alone_would_let_these_through() -> None:
    """Why the guard has its own tables: Python's is_global accepts these loopback disguises."""
    disguises = ["64:ff9b::7f00:1", "2002:7f00:1::1"]
    assert any(ipaddress.ip_address(ip).is_global for ip in disguises)
    assert all(is_forbidden(ip) for ip in disguises)


def test_allow_list_opens_exactly_its_networks() -> None:
    allowed = parse_networks(["127.0.0.2/32", "10.1.0.0/16", "fd00::/8"])
    assert is_forbidden("127.0.0.2", allowed) is None
    assert is_forbidden("::ffff:127.0.0.2", allowed) is None  # the same host, mapped
    assert is_forbidden("10.1.200.3", allowed) is None
    assert is_forbidden("fd00::1", allowed) is None
    assert is_forbidden("127.0.0.1", allowed) == "loopback"
    assert is_forbidden("10.2.0.1", allowed) == "private"
    assert is_forbidden("fc00::1", allowed) == "unique local"


V4_PRIVATE = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@given(st.ip_addresses(v=4))
def test_every_v4_form_agrees_with_its_plain_form(addr: ipaddress.IPv4Address) -> None:
    """Mapped, NAT64 and 6to4 disguises are judged exactly like the address they carry."""
    plain = is_forbidden(str(addr))
    mapped = ipaddress.IPv6Address(int(addr) | 0xFFFF << 32)
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(addr))
    sixtofour = ipaddress.IPv6Address(0x2002 << 112 | int(addr) << 80)
    for disguise in (mapped, nat64, sixtofour):
        verdict = is_forbidden(str(disguise))
        assert (verdict is None) == (plain is None), (disguise, verdict, plain)
    if any(addr in net for net in V4_PRIVATE):
        assert plain is not None


@given(st.ip_addresses())
def test_verdict_is_total_and_stricter_than_is_global(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    verdict = is_forbidden(str(addr))
    assert verdict is None or isinstance(verdict, str)
    if isinstance(addr, ipaddress.IPv4Address) and not addr.is_global:
        assert verdict is not None


@given(st.ip_addresses(v=4), st.sampled_from(["{}", "0{}", "00{}"]), st.integers(0, 3))
def test_the_literal_fast_path_resolves_as_ip_address_does(
    addr: ipaddress.IPv4Address, pad: str, at: int
) -> None:
    """A dotted quad as ``ip_address`` writes it is taken as it is; any other spelling of an
    address (a leading zero, brackets) still goes through ``ip_address`` or the resolver."""
    backend = GuardedBackend(guard=True, resolver=lambda host, port: ["192.0.2.1"])
    parts = str(addr).split(".")
    parts[at] = pad.format(parts[at])
    spelled = ".".join(parts)
    resolved = asyncio.run(backend._resolve(spelled, 80))
    if spelled == str(addr):
        assert _DOTTED_QUAD.fullmatch(spelled) and resolved == [str(addr)]
    else:
        assert not _DOTTED_QUAD.fullmatch(spelled)
        try:
            expected = [str(ipaddress.ip_address(spelled))]
        except ValueError:
            expected = ["192.0.2.1"]  # not a literal ip_address takes: the resolver's answer
        assert resolved == expected
