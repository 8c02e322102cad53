"""What response headers ask of a poller (Retry-After, freshness): pure, no clock, no I/O."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from datetime import UTC, datetime

MAX_SERVER_DELAY = 7 * 86400.0  # no header may push a feed further than a week
_SECONDS = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110 §5.6.2
# Anything after a directive up to its comma is skipped by one [^,]*: two adjacent \s* around an
# optional part made a 16 KB Cache-Control of spaces cost seconds (quadratic backtracking).
_DIRECTIVE = re.compile(rf"""\s*({_TOKEN})(?:\s*=\s*("[^"]*"|[^,\s]*))?[^,]*(?:,|$)""")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup (callers may pass lower-cased or raw header maps)."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)


def http_date(value: str | None) -> datetime | None:
    """An HTTP-date (RFC 9110 §5.6.7) as an aware datetime, or None if it is not one."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), clamped to [0, 7 days].

    Malformed values are ignored (None) rather than guessed at.
    """
    value = header(headers, "retry-after")
    if value is None:
        return None
    if _SECONDS.match(value):
        seconds = float(value)
    else:
        when = http_date(value)
        if when is None:
            return None
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_SERVER_DELAY)


def cache_directives(value: str | None) -> dict[str, str]:
    """Cache-Control directives, lower-cased names, unquoted values; first occurrence wins."""
    found: dict[str, str] = {}
    for match in _DIRECTIVE.finditer(value or ""):
        name, raw = match.group(1).lower(), match.group(2) or ""
        found.setdefault(name, raw.strip('"'))
    return found


def freshness_lifetime(headers: Mapping[str, str], now: datetime) -> float | None:
    """How long the response stays fresh (RFC 9111 §4.2.1), in seconds; None if it does not say.

    We are a private cache: s-maxage does not apply. no-store / no-cache mean "always ask".
    An Expires that is not a valid date (often "0") means already expired (RFC 9111 §5.3).
    """
    directives = cache_directives(header(headers, "cache-control"))
    if "no-store" in directives or "no-cache" in directives:
        return None
    max_age = directives.get("max-age")
    if max_age is not None and max_age.isdigit():
        return float(max_age)
    expires = header(headers, "expires")
    if expires is None:
        return None
    expires_at = http_date(expires)
    if expires_at is None:
        return 0.0
    date = http_date(header(headers, "date")) or now
    return max((expires_at - date).total_seconds(), 0.0)
