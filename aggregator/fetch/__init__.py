"""Fetching: the HTTP client (SSRF guard, caps, deadline, per-origin pool) and per-host politeness.

Knows nothing of feeds, schedules or the archive; a fetch returns a value and stores nothing.
Names load on first use, so that the configuration's URL check (``urlcheck``) does not bring
httpx into every command (issue 13: the CLI answers at once).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.fetch.http import BasicAuth, HttpClient
    from aggregator.fetch.netguard import BlockedFetch
    from aggregator.fetch.politeness import HostLimiter, RobotsCache
    from aggregator.fetch.response import Response
    from aggregator.fetch.urlcheck import url_problem

_HOMES = {"BasicAuth": "http", "HttpClient": "http", "BlockedFetch": "netguard",
          "HostLimiter": "politeness", "RobotsCache": "politeness", "Response": "response",
          "url_problem": "urlcheck"}

__all__ = ["BasicAuth", "BlockedFetch", "HostLimiter", "HttpClient", "Response", "RobotsCache",
           "url_problem"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"aggregator.fetch.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
