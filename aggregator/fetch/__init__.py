"""Fetching: the HTTP client (SSRF guard, caps, deadline, per-origin pool) and per-host politeness.

Knows nothing of feeds, schedules or the archive; a fetch returns a value and stores nothing.
"""

from aggregator.fetch.http import BasicAuth, HttpClient
from aggregator.fetch.netguard import BlockedFetch
from aggregator.fetch.politeness import HostLimiter, RobotsCache
from aggregator.fetch.response import Response
from aggregator.fetch.urlcheck import url_problem

__all__ = ["BasicAuth", "BlockedFetch", "HostLimiter", "HttpClient", "Response", "RobotsCache",
           "url_problem"]
