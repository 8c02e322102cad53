"""Per-host politeness: a concurrency and spacing limiter, and a robots.txt cache (RFC 9309).

Neither decides *whether* a feed is due (that is the polling policy); they only decide *when* a
request may start and whether a page may be fetched at all. Clocks are injected; memory is bounded
(idle hosts are forgotten, the robots cache holds a fixed number of sites).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import idna

from aggregator.errors import FetchError
from aggregator.fetch.http import HttpClient, Response
from aggregator.fetch.netguard import BlockedFetch
from aggregator.fetch.urlcheck import simple_url

if TYPE_CHECKING:
    from protego import Protego

__all__ = ["ROBOTS_MAX_BYTES", "HostLimiter", "RobotsCache", "host_key"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 §2.5: parse at least the first 500 KiB
ROBOTS_TTL = 86400.0  # RFC 9309 §2.4: do not use a cached copy for more than 24 hours
ROBOTS_ERROR_TTL = 900.0  # an unreachable robots.txt is retried after 15 minutes


def host_key(url: str) -> str:
    """The politeness unit: the lower-case host name (ports and schemes share one site).

    An IDN host and its punycode are one site (a feed configured as bücher.example may link its
    pages as xn--bcher-kva.example): the key is the ASCII form, as the request sends it.
    A canonical URL's host is that already (``simple_url``, a third of ``urlsplit``'s time).
    """
    simple = simple_url(url)
    if simple is not None:
        return simple.host
    host = (urlsplit(url).hostname or "").lower()
    return host if host.isascii() else _ascii_host(host)


@functools.lru_cache(maxsize=1024)
def _ascii_host(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):  # httpx refuses it too; the key only has to be stable
        return host


@dataclass
class _Host:
    semaphore: asyncio.Semaphore
    next_start: float = float("-inf")
    users: int = 0


class HostLimiter:
    """At most ``concurrency`` requests in flight per host, starts at least ``delay`` apart."""

    def __init__(
        self,
        concurrency: int = 2,
        delay: float = 1.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._concurrency = max(1, concurrency)
        self._delay = max(0.0, delay)
        self._clock = clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}
        self._sweep_at = 256

    @property
    def tracked_hosts(self) -> int:
        return len(self._hosts)

    def slot(self, url: str, *, delay: float | None = None) -> _Slot:
        """Hold one of the host's slots; ``delay`` may raise the gap (e.g. a robots crawl-delay).

        ``async with limiter.slot(url): ...`` (a class, not a generator: it runs per request).
        """
        return _Slot(self, url, self._delay if delay is None else max(delay, self._delay))

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            if len(self._hosts) >= self._sweep_at:
                self._forget_idle()
            host = self._hosts[key] = _Host(asyncio.Semaphore(self._concurrency))
        return host

    async def _space(self, host: _Host, gap: float) -> None:
        """Reserve the next start time before sleeping, so waiters queue up one gap apart."""
        now = self._clock()
        start = max(now, host.next_start)
        host.next_start = start + gap
        if start > now:
            await self._sleep(start - now)

    def _forget_idle(self) -> None:
        """Drop hosts with nothing in flight whose gap has passed: they carry no state."""
        now = self._clock()
        for key in [k for k, h in self._hosts.items() if h.users == 0 and h.next_start <= now]:
            del self._hosts[key]
        self._sweep_at = max(256, 2 * len(self._hosts))


class _Slot:
    """One use of a host's slot: counted as a user (never forgotten) from entry to exit."""

    __slots__ = ("_gap", "_host", "_limiter", "_url")

    def __init__(self, limiter: HostLimiter, url: str, gap: float) -> None:
        self._limiter, self._url, self._gap = limiter, url, gap
        self._host: _Host | None = None

    async def __aenter__(self) -> None:
        host = self._host = self._limiter._host(host_key(self._url))
        host.users += 1
        try:
            await host.semaphore.acquire()
        except BaseException:
            host.users -= 1
            raise
        try:
            await self._limiter._space(host, self._gap)
        except BaseException:
            self._exit(host)
            raise

    async def __aexit__(self, *exc: object) -> None:
        assert self._host is not None
        self._exit(self._host)

    @staticmethod
    def _exit(host: _Host) -> None:
        host.semaphore.release()
        host.users -= 1


@dataclass(frozen=True, slots=True)
class _Rules:
    """One site's robots.txt verdict: a parser, or allow/deny everything.

    ``reason`` says why, and is the refusal itself when everything is denied: a site whose
    robots.txt could not be read has not disallowed anything, and must not be said to have.
    """

    expires: float
    parser: Protego | None = None
    allow_all: bool = False
    reason: str = field(default="", compare=False)

    def refusal(self, url: str, user_agent: str) -> str | None:
        if self.parser is not None:
            return None if self.parser.can_fetch(url, user_agent) else f"robots.txt disallows {url}"
        return None if self.allow_all else self.reason

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


class RobotsCache:
    """robots.txt per site, fetched through the guarded client, cached with a TTL (RFC 9309).

    2xx: parsed with protego. 4xx: no rules, everything allowed (§2.3.1.3). 5xx, 429 and network
    errors: the site is "unreachable", everything disallowed for a while (§2.3.1.4), unless an
    earlier good copy is still at hand, which is then kept.
    """

    def __init__(
        self,
        http: HttpClient,
        user_agent: str,
        *,
        limiter: HostLimiter | None = None,
        ttl: float = ROBOTS_TTL,
        error_ttl: float = ROBOTS_ERROR_TTL,
        max_sites: int = 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        self._http = http
        self._user_agent = user_agent
        self._limiter = limiter
        self._ttl, self._error_ttl = ttl, error_ttl
        self._max_sites = max_sites
        self._clock = clock
        self._cache: OrderedDict[str, _Rules] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[_Rules]] = {}

    async def allowed(self, url: str, user_agent: str | None = None) -> bool:
        """May ``url`` be fetched? The robots.txt URL itself always may (§2.2.2 implies it)."""
        return await self.refusal(url, user_agent) is None

    async def refusal(self, url: str, user_agent: str | None = None) -> str | None:
        """Why ``url`` may not be fetched (a one-line reason, no stage prefix), or None if it may.

        "robots.txt disallows" only when it does; a robots.txt that the SSRF guard refused, or a
        site that could not be reached, is reported as such (RFC 9309 §2.3.1.4 still refuses).
        """
        if urlsplit(url).path == "/robots.txt":
            return None
        rules = await self._rules(url)
        return rules.refusal(url, user_agent or self._user_agent)

    async def crawl_delay(self, url: str, user_agent: str | None = None) -> float | None:
        """The site's Crawl-delay for us, if its robots.txt gives one (not in RFC 9309)."""
        rules = await self._rules(url)
        return rules.crawl_delay(user_agent or self._user_agent)

    async def _rules(self, url: str) -> _Rules:
        origin = _origin(url)
        cached = self._cache.get(origin)
        if cached is not None and cached.expires > self._clock():
            return cached
        future = self._inflight.get(origin)
        if future is None:
            future = asyncio.ensure_future(self._load(origin, cached))
            self._inflight[origin] = future
            future.add_done_callback(lambda _: self._inflight.pop(origin, None))
        return await asyncio.shield(future)  # one caller giving up must not cancel the others

    async def _load(self, origin: str, previous: _Rules | None) -> _Rules:
        rules = await self._fetch(origin, previous)
        self._cache[origin] = rules
        self._cache.move_to_end(origin)
        while len(self._cache) > self._max_sites:
            self._cache.popitem(last=False)
        return rules

    async def _fetch(self, origin: str, previous: _Rules | None) -> _Rules:
        url = origin + "/robots.txt"
        try:
            if self._limiter is None:
                response = await self._get(url)
            else:
                async with self._limiter.slot(url):
                    response = await self._get(url)
        except BlockedFetch as exc:  # the page's host is refused too: say so, and how to allow
            return _Rules(self._clock() + self._error_ttl, reason=_unprefixed(exc))
        except FetchError as exc:
            return self._unreachable(previous, _unprefixed(exc))
        now = self._clock()
        if 200 <= response.status < 300:
            from protego import Protego  # loaded by the first robots.txt: feeds need none

            text = response.body.decode("utf-8", errors="replace")
            return _Rules(now + self._ttl, parser=Protego.parse(text), reason="parsed")
        if 400 <= response.status < 500 and response.status != 429:
            return _Rules(now + self._ttl, allow_all=True, reason=f"HTTP {response.status}")
        return self._unreachable(previous, f"HTTP {response.status} for {url}")

    async def _get(self, url: str) -> Response:
        return await self._http.get(
            url, accept="text/plain", max_bytes=ROBOTS_MAX_BYTES, truncate=True
        )

    def _unreachable(self, previous: _Rules | None, reason: str) -> _Rules:
        expires = self._clock() + self._error_ttl
        if previous is not None and previous.parser is not None:
            return _Rules(expires, parser=previous.parser, reason=f"kept after {reason}")
        return _Rules(expires, reason=f"robots.txt unreachable, no page fetched for now ({reason})")


def _unprefixed(exc: FetchError) -> str:
    return str(exc).removeprefix(f"{exc.stage}: ")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()
