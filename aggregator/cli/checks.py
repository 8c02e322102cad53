"""What ``check-config`` warns about: a configuration that is valid but will not do what its
author expects (issue 13). Warnings, not errors: the file is right, the outcome is surprising."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from aggregator.config import Settings


def warnings(settings: Settings, file: str) -> list[str]:
    lines = []
    if not settings.feeds:
        lines.append(f"config: warning: {file} lists no feeds; `poll` and `run` refuse it")
    if not settings.http.allow_private_networks:
        lines += [_private(i, feed.url) for i, feed in enumerate(settings.feeds)
                  if _literal_private(feed.url, settings.http.allowed_networks)]
    return lines


def _private(index: int, url: str) -> str:
    from storage.redact import redact_url

    host = urlsplit(url).hostname
    return (f"config: warning: feeds[{index}].url {redact_url(url)}: {host} is a private or "
            "loopback address, which the fetcher refuses; allow it with http.allowed_networks "
            "or http.allow_private_networks: true")


def _literal_private(url: str, allowed: tuple[str, ...]) -> bool:
    """A host written as a private IP address (or localhost): known before any DNS lookup.
    Names are judged at connect time, after resolution, by the fetcher's guard."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    from aggregator.fetch.netguard import is_forbidden, parse_networks  # brings httpcore

    return is_forbidden(host, parse_networks(allowed)) is not None
