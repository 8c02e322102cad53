"""The reason given is the real reason (issue 11): real servers on 127.0.0.1, guard on and off.

A page refused because the SSRF guard blocked its site's robots.txt was reported as "robots.txt
disallows"; so was a site whose robots.txt answered 503. An IDN feed was said to be "redirected
from" itself, because its punycode form differs from the configured text.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from aggregator.config.settings import HttpSettings
from aggregator.errors import FetchError
from aggregator.extract.rules import SiteRules
from aggregator.fetch.http import HttpClient
from aggregator.fetch.netguard import ALLOW_HINT
from aggregator.fetch.politeness import HostLimiter, RobotsCache, host_key
from aggregator.runtime.pipeline import ArticleResult, Context, fetch_article
from storage.records import PendingArticle
from tests.httpserver import TestServer

UA = "feed-archiver-test/1"


def settings(**overrides: Any) -> HttpSettings:
    base = {"allow_private_networks": True, "timeout": 5, "connect_timeout": 2, "user_agent": UA}
    return HttpSettings.model_validate(base | overrides)


def refusal(url: str, config: HttpSettings) -> str | None:
    async def go() -> str | None:
        async with HttpClient(config) as client:
            return await RobotsCache(client, UA).refusal(url)

    return asyncio.run(go())


def article_error(url: str, config: HttpSettings) -> str | None:
    """What ``fetch_article`` records for ``url``, with robots.txt respected."""

    async def go() -> ArticleResult:
        async with HttpClient(config) as client:
            ctx = Context(
                store=cast(Any, None),  # fetch_article returns a value; it never writes
                writer=cast(Any, None),
                http=client,
                limiter=HostLimiter(2, 0.0),
                robots=RobotsCache(client, UA),
                rules=SiteRules(()),
                owner="test",
                clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
                rng=random.Random(1),
            )
            return await fetch_article(ctx, PendingArticle(1, url, 1, url, 0))

    return asyncio.run(go()).error


def test_a_page_behind_the_guard_is_reported_blocked_not_disallowed(
    http_server: TestServer,
) -> None:
    http_server.route("/robots.txt", body=b"User-agent: *\nAllow: /\n")
    page = http_server.url("/news/1.html")
    error = article_error(page, settings(allow_private_networks=False))
    robots = http_server.url("/robots.txt")
    assert error == f"fetch: blocked address 127.0.0.1 (loopback) for {robots}{ALLOW_HINT}"
    assert http_server.requests == []


def test_a_blocked_robots_txt_is_never_a_verdict(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=b"User-agent: *\nDisallow: /\n")
    reason = refusal(http_server.url("/a"), settings(allow_private_networks=False))
    assert reason is not None and reason.startswith("blocked address 127.0.0.1 (loopback)")
    assert "disallows" not in reason and reason.endswith(ALLOW_HINT)


@pytest.mark.parametrize("status", [429, 503])
def test_an_unreachable_robots_txt_is_reported_unreachable(
    http_server: TestServer, status: int
) -> None:
    http_server.route("/robots.txt", status=status)
    page = http_server.url("/a")
    assert refusal(page, settings()) == (
        "robots.txt unreachable, no page fetched for now "
        f"(HTTP {status} for {http_server.url('/robots.txt')})"
    )
    assert article_error(page, settings()) == "fetch: " + (refusal(page, settings()) or "")


def test_a_real_disallow_is_still_reported_as_one(http_server: TestServer) -> None:
    http_server.route("/robots.txt", body=b"User-agent: *\nDisallow: /private/\n")
    page = http_server.url("/private/a.html")
    assert refusal(page, settings()) == f"robots.txt disallows {page}"
    assert article_error(page, settings()) == f"fetch: robots.txt disallows {page}"
    assert refusal(http_server.url("/public/a.html"), settings()) is None


def fetch_error(url: str, config: HttpSettings) -> str:
    """The one-line error of a fetch capped at 4 bytes, through a resolver naming 127.0.0.1."""

    async def go() -> None:
        async with HttpClient(config, resolver=lambda host, port: ["127.0.0.1"]) as client:
            await client.get(url, max_bytes=4)

    with pytest.raises(FetchError) as info:
        asyncio.run(go())
    return str(info.value)


@pytest.mark.parametrize("path", ["/feed.xml", "/a feed.xml", "/caf\u00e9.xml"])
def test_an_idn_feed_is_not_redirected_from_itself(http_server: TestServer, path: str) -> None:
    http_server.route("/feed.xml", body=b"too long for the cap")
    http_server.route("/a%20feed.xml", body=b"too long for the cap")
    http_server.route("/caf%C3%A9.xml", body=b"too long for the cap")
    url = f"http://b\u00fccher.test:{http_server.port}{path}"
    assert fetch_error(url, settings()) == f"fetch: body of 20 bytes exceeds 4 bytes cap for {url}"


def test_a_real_redirect_still_names_both(http_server: TestServer) -> None:
    target = f"http://xn--bcher-kva.test:{http_server.port}/new.xml"
    http_server.redirect("/old.xml", target)
    http_server.route("/new.xml", body=b"too long for the cap")
    start = f"http://b\u00fccher.test:{http_server.port}/old.xml"
    assert fetch_error(start, settings()) == (
        f"fetch: body of 20 bytes exceeds 4 bytes cap for {target} (redirected from {start})"
    )


def test_an_idn_host_and_its_punycode_are_one_site_for_politeness(
    http_server: TestServer,
) -> None:
    """Neighbour: the limiter keyed the two spellings apart, so one site got twice the rate."""
    assert host_key("http://B\u00fccher.example/a") == host_key("https://xn--bcher-kva.example/b")
    assert host_key("http://stra\u00dfe.example/") == "xn--strae-oqa.example"
    http_server.route("/a", body=b"ok")
    urls = [f"http://b\u00fccher.test:{http_server.port}/a",
            f"http://xn--bcher-kva.test:{http_server.port}/a"]

    async def go() -> int:
        limiter = HostLimiter(1, 0.0)
        async with HttpClient(settings(), resolver=lambda host, port: ["127.0.0.1"]) as client:
            for url in urls:
                async with limiter.slot(url):
                    await client.get(url)
        return limiter.tracked_hosts

    assert asyncio.run(go()) == 1
    assert http_server.hits("/a") == 2
