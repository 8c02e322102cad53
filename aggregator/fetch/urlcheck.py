"""Whether a URL can be fetched at all: one rule for ``check-config`` and for the HTTP client.

Pure (stdlib and ``idna``, which httpx itself uses): no DNS, no socket. It refuses what no
request could ever reach (issue 10): a scheme other than http(s), no host, a port outside
1–65535, a malformed host (an empty or over-long label, characters no DNS name holds, an
``xn--`` label that is not valid Punycode, an IDN that IDNA 2008 refuses). Without it such URLs
reached httpx, asyncio or the resolver and came back as ``IDNAError`` or ``OverflowError``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

import idna

__all__ = ["SCHEMES", "SimpleURL", "simple_url", "url_problem"]

SCHEMES = frozenset({"http", "https"})
_MAX_LABEL = 63  # RFC 1035 §2.3.4
_MAX_NAME = 253
# Letters, digits and hyphens (RFC 1123), plus "_"; hyphens anywhere, as resolvers accept them
# (some real blog hosts begin or end with one).
_ASCII_LABEL = re.compile(r"^[a-z0-9_-]+$")
# What httpx reads as a dotted IPv4 address and validates; "127.1" or "2130706433" go to the
# resolver, which reads them as inet_aton does (the SSRF guard then vets the address).
_IPV4_STYLE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
# A URL already in the form httpx gives it, that ``url_problem`` accepts: lower-case scheme and
# host (letter-digit-hyphen labels, or a dotted IPv4 address without leading zeros), a port
# other than the scheme's default, a path (no dot segments: checked apart) and query of
# characters httpx leaves as they are, no fragment, no user info. Anything else: no match.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})"
_SIMPLE = re.compile(
    rf"(https?)://((?:{_LABEL}\.)*{_LABEL})(?::([1-9][0-9]{{0,4}}))?"
    rf"(/{_PCHAR}*(?:\?(?:{_PCHAR}|\?)+)?)"
)
_CANONICAL_V4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SIMPLE_MAX = 2048  # longer URLs take the general path


class SimpleURL(NamedTuple):
    """The parts of a URL that :func:`simple_url` found already canonical."""

    scheme: str
    host: str
    port: int | None  # None: the scheme's default
    target: str  # path and query, as sent in the request line


def simple_url(url: str) -> SimpleURL | None:
    """``url``'s parts if it is canonical and fetchable (most feed URLs), else None.

    For such a URL, httpx's parsing gives back the same text, this host and port, and this
    request target, and ``url_problem`` finds nothing (tests/test_urlcheck_fast.py checks it
    against both): callers may skip them. None only means "ask the general path".
    """
    if len(url) > _SIMPLE_MAX:
        return None
    match = _SIMPLE.fullmatch(url)
    if match is None:
        return None
    scheme, host, port_text, target = match.groups()
    if "/." in target or len(host) > _MAX_NAME or "xn--" in host:
        return None  # dot segments (httpx removes them), over-long or IDN names
    if host.rpartition(".")[2].isdigit() and _CANONICAL_V4.fullmatch(host) is None:
        return None  # numbers that are no IPv4 address as httpx writes one
    port = None if port_text is None else int(port_text)
    if port is not None and (port > 65535 or port == _DEFAULT_PORTS[scheme]):
        return None  # out of range, or a default port httpx drops
    return SimpleURL(scheme, host, port, target)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched, in a few words ("bad port 99999"), or None if it can.

    A URL already canonical (``simple_url``, most feed URLs) has none: the configuration of a
    thousand feeds is checked at every start."""
    if simple_url(url) is not None:
        return None
    return general_problem(url)


def general_problem(url: str) -> str | None:
    """``url_problem`` for any text: split, then scheme, host and port checked one by one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # "Port out of range 0-65535", "Invalid IPv6 URL"
        return _port_or_syntax(url, exc)
    if parts.scheme.lower() not in SCHEMES:
        return f"unsupported scheme {parts.scheme or '(none)'!r} (only http and https)"
    host = parts.hostname
    if not host:
        return "no host"
    if port == 0:
        return "bad port 0 (ports are 1-65535)"
    return host_problem(host)


def host_problem(host: str) -> str | None:
    """Why ``host`` (as ``urlsplit`` gives it: lower-case, no brackets) is no reachable host."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"malformed IPv6 address {host!r}"
        return None
    if _IPV4_STYLE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"malformed IPv4 address {host!r}"
        return None
    if not host.isascii():
        return _idn_problem(host)
    return _ascii_problem(host)


def _port_or_syntax(url: str, exc: ValueError) -> str:
    text = str(exc)
    if "Port" in text:
        port = url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")[2]
        return f"bad port {port[:20]} (ports are 1-65535)"
    return f"malformed URL ({text})"


def _idn_problem(host: str) -> str | None:
    """httpx encodes a non-ASCII host with ``idna.encode``; what it refuses is unreachable."""
    try:
        ascii_host = idna.encode(host.rstrip(".")).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        return f"malformed international host {host[:100]!r} ({exc})"
    return _ascii_problem(ascii_host)


def _ascii_problem(host: str) -> str | None:
    name = host.rstrip(".")  # one trailing dot is the DNS root: fine
    if len(name) > _MAX_NAME:
        return f"host name longer than {_MAX_NAME} characters"
    for label in name.split("."):
        if not label or len(label) > _MAX_LABEL:
            return f"malformed host {host[:100]!r} (empty or over-long label)"
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError) as exc:
                return f"malformed host {host[:100]!r} (bad IDN label {label!r}: {exc})"
        elif not _ASCII_LABEL.match(label):
            return f"malformed host {host[:100]!r} (characters no host name holds)"
    return None
