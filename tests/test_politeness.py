"""Per-host limits and robots.txt: real requests timed by the server, else a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

import pytest

from aggregator.config.settings import HttpSettings
from aggregator.fetch.http import HttpClient
from aggregator.fetch.politeness import ROBOTS_MAX_BYTES, HostLimiter, RobotsCache, host_key
from tests.httpserver import TestServer

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's

UA = "feed-archiver/0.1 (+https://example.org/bot)"
ROBOTS = b"""
User-agent: feed-archiver
Disallow: /private/
Crawl-delay: 3

User-agent: *
Disallow: /
"""


def settings(**overrides: Any) -> HttpSettings:
    base = {"allow_private_networks": True, "timeout": 2, "connect_timeout": 1, "user_agent": UA}
    return HttpSettings.model_validate(base | overrides)


class FakeClock:
    """Monotonic time that only moves when a test (or a fake sleep) moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_host_key_is_the_lower_case_host() -> None:
    assert host_key("https://Example.COM:8443/a?b") == "example.com"
    assert host_key("http://[::1]:80/") == "::1"


def test_third_concurrent_request_to_a_host_waits(http_server: TestServer) -> None:
    http_server.route("/slow", body=b"ok", delay=0.8)

    async def go() -> None:
        limiter = HostLimiter(2, 0.0)
        async with HttpClient(settings()) as client:

            async def one() -> None:
                async with limiter.slot(http_server.url("/slow")):
                    await client.get(http_server.url("/slow"))

            await asyncio.gather(one(), one(), one())

    asyncio.run(go())
    starts = sorted(r.time for r in http_server.requests)
    assert starts[1] - starts[0] < 0.4  # two in flight at once
    assert starts[2] - starts[0] >= 0.65  # the third waited for a slot (0.8 s, minus jitter)


def test_minimum_gap_between_starts_is_respected(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"ok")

    async def go() -> None:
        limiter = HostLimiter(2, 0.5)
        async with HttpClient(settings()) as client:

            async def one(path: str) -> None:
                async with limiter.slot(http_server.url(path)):
                    await client.get(http_server.url(path))

            await asyncio.gather(*(one("/feed") for _ in range(4)))

    asyncio.run(go())
    starts = sorted(r.time for r in http_server.requests)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4 and min(gaps) >= 0.4, gaps  # arrival times carry some jitter


def test_other_hosts_are_not_held_up(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"ok")

    async def go() -> None:
        limiter = HostLimiter(1, 5.0)
        async with HttpClient(settings()) as client:

            async def one(host: str) -> None:
                url = http_server.url("/feed", host=host)
                async with limiter.slot(url):
                    await client.get(url)

            await asyncio.wait_for(asyncio.gather(*(one(f"127.0.0.{i}") for i in range(1, 6))), 2)

    asyncio.run(go())
    assert len(http_server.requests) == 5


def test_limiter_spaces_starts_with_an_injected_clock() -> None:
    clock = FakeClock()

    async def go() -> list[float]:
        limiter = HostLimiter(2, 1.5, clock=clock, sleep=clock.sleep)
        starts = []
        for _ in range(3):
            async with limiter.slot("http://a.example/x"):
                starts.append(clock())
        async with limiter.slot("http://a.example/x", delay=10.0):  # a crawl-delay widens the gap
            starts.append(clock())
        async with limiter.slot("http://a.example/x"):
            starts.append(clock())
        return starts

    starts = asyncio.run(go())
    assert [b - a for a, b in itertools.pairwise(starts)] == [1.5, 1.5, 1.5, 10.0]


def test_limiter_forgets_idle_hosts() -> None:
    clock = FakeClock()

    async def go() -> int:
        limiter = HostLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
        for i in range(5000):
            async with limiter.slot(f"http://host{i}.example/"):
                pass
            clock.now += 0.01
        clock.now += 2
        async with limiter.slot("http://last.example/"):
            pass
        return limiter.tracked_hosts

    assert asyncio.run(go()) <= 512


# -- robots.txt ----------------------------------------------------------------------------


def robots_run(server: TestServer, urls: list[str], **kwargs: Any) -> list[bool]:
    async def go() -> list[bool]:
        async with HttpClient(settings()) as client:
            robots = RobotsCache(client, UA, **kwargs)
            return [await robots.allowed(server.url(u)) for u in urls]

    return asyncio.run(go())


def test_robots_rules_for_our_agent_apply_and_are_cached(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=ROBOTS, headers={"Content-Type": "text/plain"})
    verdicts = robots_run(http_server, ["/private/a.html", "/news/a.html", "/robots.txt", "/b"])
    assert verdicts == [False, True, True, True]
    assert http_server.hits("/robots.txt") == 1
    assert http_server.requests[0].headers["user-agent"] == UA


def test_other_agents_rules_do_not_apply_to_us(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=b"User-agent: otherbot\nDisallow: /\n")
    assert robots_run(http_server, ["/anything"]) == [True]


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_robots_4xx_allows_everything(http_server: TestServer, status: int) -> None:
    http_server.route("/robots.txt", status=status, body=b"User-agent: *\nDisallow: /\n")
    assert robots_run(http_server, ["/private/a", "/x"]) == [True, True]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_robots_5xx_and_429_disallow_everything(http_server: TestServer, status: int) -> None:
    http_server.route("/robots.txt", status=status)
    assert robots_run(http_server, ["/x", "/y"]) == [False, False]
    assert http_server.hits("/robots.txt") == 1  # cached for a while, not re-asked per page


def test_robots_unreachable_site_disallows() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused

    async def go() -> bool:
        async with HttpClient(settings()) as client:
            return await RobotsCache(client, UA).allowed(f"http://127.0.0.1:{port}/page")

    assert asyncio.run(go()) is False


def test_robots_ttl_refetches_and_keeps_a_good_copy_on_errors(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=ROBOTS)
    clock = FakeClock()

    async def go() -> list[bool]:
        async with HttpClient(settings()) as client:
            robots = RobotsCache(client, UA, ttl=100, error_ttl=10, clock=clock)
            verdicts = [await robots.allowed(http_server.url("/news"))]
            http_server.route("/robots.txt", status=503)
            clock.now += 101
            verdicts.append(await robots.allowed(http_server.url("/news")))  # the old copy holds
            verdicts.append(await robots.allowed(http_server.url("/private/x")))
            http_server.route("/robots.txt", body=b"User-agent: *\nDisallow: /news\n")
            clock.now += 11
            verdicts.append(await robots.allowed(http_server.url("/news")))
            return verdicts

    assert asyncio.run(go()) == [True, True, False, False]
    assert http_server.hits("/robots.txt") == 3


def test_robots_concurrent_callers_share_one_fetch(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=ROBOTS, delay=0.3)

    async def go() -> list[bool]:
        async with HttpClient(settings()) as client:
            robots = RobotsCache(client, UA)
            urls = [http_server.url(f"/news/{i}") for i in range(10)]
            return await asyncio.gather(*(robots.allowed(u) for u in urls))

    assert asyncio.run(go()) == [True] * 10
    assert http_server.hits("/robots.txt") == 1


def test_robots_crawl_delay_is_exposed(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=ROBOTS)

    async def go() -> float | None:
        async with HttpClient(settings()) as client:
            return await RobotsCache(client, UA).crawl_delay(http_server.url("/news"))

    assert asyncio.run(go()) == 3.0


def test_robots_over_500_kib_is_parsed_from_its_beginning(http_server: TestServer) -> None:
    padding = b"# " + b"x" * 1000 + b"\n"
    body = b"User-agent: *\nDisallow: /private/\n" + padding * (ROBOTS_MAX_BYTES // 1000 + 50)
    body += b"Disallow: /late/\n"
    http_server.route("/robots.txt", body=body, gzip=True)
    assert robots_run(http_server, ["/private/a", "/late/a", "/ok"]) == [False, True, True]


def test_robots_fetch_goes_through_the_limiter(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=ROBOTS)
    clock = FakeClock()
    limiter = HostLimiter(1, 5.0, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        async with HttpClient(settings()) as client:
            robots = RobotsCache(client, UA, limiter=limiter)
            await robots.allowed(http_server.url("/news"))
            async with limiter.slot(http_server.url("/news")):
                pass

    asyncio.run(go())
    assert clock.sleeps == [5.0]  # the page waited one gap after the robots.txt request
