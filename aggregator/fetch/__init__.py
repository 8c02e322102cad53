"""Fetching: the HTTP client (SSRF guard, caps, deadline, per-origin pool) and per-host politeness.

Knows nothing of feeds, schedules or the archive; a fetch returns a value and stores nothing.
``url_problem`` is cheap and loaded at once (the configuration checks URLs with it); the client
and its politeness load on first use: loading the CLI and the configuration imports no httpx.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from aggregator.fetch.urlcheck import url_problem

# httpx imports its command-line tool when rich, pygments and click are installed (3 MiB of a
# 74 MiB idle service); nothing here runs it. Absent, httpx falls back to its stub ``main``.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

if TYPE_CHECKING:
    from aggregator.fetch.http import BasicAuth, HttpClient
    from aggregator.fetch.netguard import BlockedFetch
    from aggregator.fetch.politeness import HostLimiter, RobotsCache
    from aggregator.fetch.response import Response

__all__ = ["BasicAuth", "BlockedFetch", "HostLimiter", "HttpClient", "Response", "RobotsCache",
           "url_problem"]


def __getattr__(name: str) -> Any:
    """The client's names, loaded with their modules when first asked for."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import aggregator.fetch.http
    import aggregator.fetch.netguard
    import aggregator.fetch.politeness
    import aggregator.fetch.response

    fetch = aggregator.fetch
    for module in (fetch.http, fetch.netguard, fetch.politeness, fetch.response):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
