"""A failure is a failure, counted once (issue 10, item 5), on SQLite and PostgreSQL.

Any exception while fetching or extracting a page, foreseen or not, is that page's failure:
one attempt counted, a back-off, the attempt cap. Any exception in a feed's poll is that feed's
failed poll with back-off. Before, such pages stayed pending with 0 attempts and came back at
every lease expiry, forever; a poll that raised left its lease to expire.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.config.settings import Settings
from aggregator.errors import StorageError
from aggregator.runtime.oneshot import OneShot
from aggregator.runtime.pipeline import ARTICLE_ATTEMPTS, ARTICLE_RETRY_BASE, poll_feed
from aggregator.runtime.worker import Totals, open_context
from storage.records import ArticleResult, ExportFilter, PollResult, PollSummary
from storage.store import Store
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer

BAD_HOST = "http://xn--.invalid"
BAD_PORT = "http://127.0.0.1:99999"


def settings_for(*urls: str, fetch_articles: bool = True) -> Settings:
    return Settings.model_validate({
        "http": {"allow_private_networks": True, "per_host_delay": 0, "timeout": 5,
                 "respect_robots": False},
        "defaults": {"fetch_articles": fetch_articles},
        "feeds": [{"url": url} for url in urls],
    })


def poll_at(settings: Settings, store: Store, when: datetime) -> Totals:
    store.sync_feeds(settings.feed_configs(), when)
    return asyncio.run(OneShot(settings, store, clock=lambda: when).poll_once())


def items_by_url(store: Store) -> dict[str, dict[str, Any]]:
    return {i["url"]: i for i in store.iter_items(ExportFilter())}


def next_try(store: Store, url: str) -> datetime | None:
    from sqlalchemy import select

    from storage.tables import items

    with store.db.read() as conn:
        value: datetime | None = conn.execute(
            select(items.c.article_next_try).where(items.c.url == url)).scalar_one()
    return value


@pytest.fixture
def hostile_links(http_server: TestServer) -> Iterator[tuple[str, list[str]]]:
    """A feed whose pages cannot be fetched: a malformed IDN host, port 99999, and
    redirects to each. Its URL and its pages' URLs."""
    base = http_server.base_url
    items = [Item(1, BAD_HOST), Item(2, BAD_PORT), Item(3, base), Item(4, base)]
    http_server.route("/feed.xml", body=rss(items))
    http_server.redirect("/news/3.html", f"{BAD_HOST}/moved")
    http_server.redirect("/news/4.html", f"{BAD_PORT}/moved")
    yield http_server.url("/feed.xml"), [item.link for item in items]


def test_unfetchable_links_are_failures_counted_once_then_given_up(
    hostile_links: tuple[str, list[str]], store: Store
) -> None:
    feed_url, pages = hostile_links
    settings = settings_for(feed_url)
    start = datetime.now(UTC)
    first = poll_at(settings, store, start)
    assert (first.ok, first.failed, first.new_items) == (1, 0, 4)  # the feed itself is fine
    assert (first.articles_ok, first.articles_failed) == (0, 4)
    assert len(first.page_errors) == 4
    stored = items_by_url(store)
    for page in pages:
        item = stored[page]
        assert item["article_status"] == "failed", item
        assert item["article_attempts"] == 1
        assert item["article_error"].startswith(("fetch: invalid URL", "fetch: redirect to"))
        assert page in item["article_error"]
        assert next_try(store, page) == start + timedelta(seconds=ARTICLE_RETRY_BASE)
    # Within the back-off nothing is claimed again (before: re-claimed at each lease expiry).
    again = poll_at(settings, store, start + timedelta(minutes=5))
    assert (again.articles_ok, again.articles_failed) == (0, 0)
    # Each later attempt counts once, and after the cap the pages are left alone.
    for n in range(1, ARTICLE_ATTEMPTS):
        later = poll_at(settings, store, start + timedelta(days=2 * n))
        assert later.articles_failed == 4
    assert all(i["article_attempts"] == ARTICLE_ATTEMPTS for i in items_by_url(store).values())
    assert all(next_try(store, page) is None for page in pages)
    done = poll_at(settings, store, start + timedelta(days=2 * ARTICLE_ATTEMPTS + 1))
    assert done.articles_failed == 0


def serve_story(http_server: TestServer) -> str:
    item = Item(1, http_server.base_url)
    http_server.route("/feed.xml", body=rss([item]))
    http_server.route("/news/1.html", body=article_page(item),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    return http_server.url("/feed.xml")


def only_item(store: Store) -> dict[str, Any]:
    (item,) = store.iter_items(ExportFilter())
    return item


def test_an_extractor_that_raises_is_that_pages_failure_and_the_page_is_kept(
    http_server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aggregator.extract.article as article

    def broken(*args: object) -> None:  # a bug nobody foresaw, in a page nobody foresaw
        raise KeyError("surprise")

    monkeypatch.setattr(article, "extract", broken)
    totals = poll_at(settings_for(serve_story(http_server)), store, datetime.now(UTC))
    assert (totals.ok, totals.failed, totals.articles_failed) == (1, 0, 1)
    item = only_item(store)
    assert (item["article_status"], item["article_attempts"]) == ("failed", 1)
    assert item["article_error"].startswith("extract: unexpected KeyError: 'surprise' for ")
    assert store.stats()["captures"] == 2  # the feed and the page: re-extraction can retry it


def test_a_missing_extractor_module_is_each_pages_failure(
    http_server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a stock pip install did (lxml.html.clean moved out): every article failed to
    import, and stayed pending for ever."""
    monkeypatch.setitem(sys.modules, "aggregator.extract.article", None)
    totals = poll_at(settings_for(serve_story(http_server)), store, datetime.now(UTC))
    assert totals.articles_failed == 1
    item = only_item(store)
    assert (item["article_status"], item["article_attempts"]) == ("failed", 1)
    assert item["article_error"].startswith("extract: unexpected ModuleNotFoundError")


def test_an_article_the_database_refuses_is_stored_as_a_failure(
    http_server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.apply_article

    def refusing(item_id: int, result: ArticleResult, now: datetime) -> bool:
        if result.article is not None:  # as PostgreSQL refuses a value it cannot hold
            raise StorageError("storage: value out of range")
        return real(item_id, result, now)

    monkeypatch.setattr(store, "apply_article", refusing)
    totals = poll_at(settings_for(serve_story(http_server)), store, datetime.now(UTC))
    assert (totals.articles_ok, totals.articles_failed) == (0, 1)
    item = only_item(store)
    assert (item["article_status"], item["article_attempts"]) == ("failed", 1)
    assert item["article_error"].startswith("storage: could not store the article of http")


def synced_story(http_server: TestServer, store: Store) -> tuple[str, Settings, datetime]:
    """One feed of one story, without articles, in the store: its URL, settings and now."""
    url = serve_story(http_server)
    settings = settings_for(url, fetch_articles=False)
    now = datetime.now(UTC)
    store.sync_feeds(settings.feed_configs(), now)
    return url, settings, now


async def claim_and_poll(settings: Settings, store: Store, now: datetime, **swap: Any) -> Any:
    """Claim the one feed and poll it with parts of the context swapped."""
    async with open_context(settings, store, clock=lambda: now) as ctx:
        (feed,) = store.claim_due(now, 1, ctx.owner, 300)
        return await poll_feed(replace(ctx, **swap), feed, settings.feed_configs()[0])


def test_a_parser_that_raises_is_the_feeds_failed_poll_with_back_off(
    http_server: TestServer, store: Store
) -> None:
    url, settings, now = synced_story(http_server, store)

    def parse(*args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    outcome = asyncio.run(claim_and_poll(settings, store, now, parse=parse))
    assert outcome.result.error == f"parse: unexpected RecursionError: maximum recursion " \
                                   f"depth exceeded for {url}"
    feed = store.get_feed(url)
    assert feed is not None and feed.last_status == "error" and feed.error_count == 1
    assert feed.next_check > now + timedelta(minutes=15)  # backed off past the 15 min interval
    assert store.claim_due(now + timedelta(minutes=10), 1, "another", 300) == []  # no lease left


def test_feeds_are_parsed_in_the_parse_threads_not_the_loops_executor(
    http_server: TestServer, store: Store
) -> None:
    import threading

    from aggregator.feeds.parse import parse_feed

    _, settings, now = synced_story(http_server, store)
    seen: list[str] = []

    def parse(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return parse_feed(*args)

    outcome = asyncio.run(claim_and_poll(settings, store, now, parse=parse))
    assert outcome.result.error is None and outcome.summary.new_items == 1
    assert len(seen) == 1 and seen[0].startswith("parse_"), seen  # not the loop executor's


def test_a_feed_in_the_parse_threads_hands_is_finished_before_the_context_closes(
    http_server: TestServer, store: Store
) -> None:
    import threading

    from aggregator.feeds.parse import parse_feed

    _, settings, now = synced_story(http_server, store)
    started, finished = threading.Event(), threading.Event()

    def slow_parse(*args: Any) -> Any:
        started.set()
        threading.Event().wait(0.3)  # a long parse, without the event loop
        try:
            return parse_feed(*args)
        finally:
            finished.set()

    async def cancelled_mid_parse() -> bool:
        async with open_context(settings, store, clock=lambda: now) as ctx:
            (feed,) = store.claim_due(now, 1, ctx.owner, 300)
            task = asyncio.ensure_future(poll_feed(replace(ctx, parse=slow_parse), feed,
                                                   settings.feed_configs()[0]))
            while not started.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return finished.is_set()  # the context is closed: its parse threads are done

    assert asyncio.run(cancelled_mid_parse())


class RefusingWriter:
    """The poll writer, except that the database refuses results that bring entries."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.pending = 0
        self.on_queued = lambda: None

    async def write(self, result: PollResult) -> PollSummary:
        if result.entries:
            raise StorageError("storage: apply_poll of feed 1: value too long")
        summary: PollSummary = await self.real.write(result)
        return summary


def test_a_poll_the_database_refuses_is_the_feeds_failed_poll(
    http_server: TestServer, store: Store
) -> None:
    url = serve_story(http_server)
    settings = settings_for(url, fetch_articles=False)
    now = datetime.now(UTC)
    store.sync_feeds(settings.feed_configs(), now)

    async def run() -> Any:
        async with open_context(settings, store, clock=lambda: now) as ctx:
            (feed,) = store.claim_due(now, 1, ctx.owner, 300)
            writer = RefusingWriter(ctx.writer)
            return await poll_feed(replace(ctx, writer=writer), feed, settings.feed_configs()[0])

    outcome = asyncio.run(run())
    assert outcome.result.error.startswith(f"storage: could not store the poll of {url}: ")
    feed = store.get_feed(url)
    assert feed is not None and (feed.last_status, feed.error_count) == ("error", 1)
    assert feed.last_http_status == 200 and feed.etag is None  # validators not advanced
    assert store.claim_due(now + timedelta(minutes=10), 1, "another", 300) == []


# -- a fetch that never came back (the process died mid-fetch) ------------------------------

FEED = "https://news.example/feed.xml"


def pending_item(store: Store) -> None:
    from storage.records import FeedConfig
    from tests.dbfixtures import T0, entry, poll

    store.sync_feeds([FeedConfig(url=FEED, fetch_articles=True)], T0)
    poll(store, FEED, T0, [entry(1)])


def test_an_interrupted_fetch_counts_as_an_attempt_up_to_the_cap(store: Store) -> None:
    """Before, a page whose fetch killed the process came back at every lease expiry, for ever,
    with 0 attempts."""
    from storage.articles import GAVE_UP, INTERRUPTED
    from tests.dbfixtures import T0

    pending_item(store)
    lease = 300
    for n in range(ARTICLE_ATTEMPTS):
        (claimed,) = store.claim_articles(T0 + timedelta(seconds=(lease + 1) * n), 10, "w", lease)
        assert claimed.attempts == n  # each claim that never came back counted once
        assert only_item(store)["article_error"] == INTERRUPTED
    assert store.claim_articles(T0 + timedelta(days=1), 10, "w", lease) == []
    item = only_item(store)
    assert (item["article_status"], item["article_attempts"]) == ("failed", ARTICLE_ATTEMPTS)
    assert item["article_error"] == GAVE_UP
    assert store.claim_articles(T0 + timedelta(days=30), 10, "w", lease) == []  # for good


def test_a_fetch_with_an_outcome_counts_once(store: Store) -> None:
    from aggregator.runtime.pipeline import article_failure
    from tests.dbfixtures import T0

    pending_item(store)
    (claimed,) = store.claim_articles(T0, 10, "w", 300)
    store.apply_article(claimed.item_id, article_failure(claimed, T0, "fetch: HTTP 404 for x"), T0)
    assert store.claim_articles(T0 + timedelta(minutes=10), 10, "w", 300) == []  # backing off
    (again,) = store.claim_articles(T0 + timedelta(minutes=16), 10, "w", 300)
    assert again.attempts == 1
    item = only_item(store)
    assert item["article_attempts"] == 1


def test_reextract_counts_a_page_the_extractor_trips_on_and_goes_on(
    http_server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import aggregator.cli.tools as tools

    settings = settings_for(serve_story(http_server))
    assert poll_at(settings, store, datetime.now(UTC)).articles_ok == 1

    def broken(*args: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(tools, "extract", broken)
    done = tools.reextract_all(store, settings, None, None)
    assert (done.pages, done.changed, done.failed, done.no_page) == (1, 0, 1, 0)
    assert any(m.startswith("extract: unexpected KeyError: 'surprise' for http")
               for m in caplog.messages)
    assert only_item(store)["article_status"] == "ok"  # the stored article stays


def test_a_page_that_cannot_be_stored_at_all_is_a_failed_page_not_a_failed_feed(
    http_server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database out of reach for article writes: counted among pages (it was counted as a
    failed feed), and the page comes back once its claim's lease runs out."""

    def unreachable(*args: object) -> bool:
        raise StorageError("storage: connection refused")

    monkeypatch.setattr(store, "apply_article", unreachable)
    totals = poll_at(settings_for(serve_story(http_server)), store, datetime.now(UTC))
    assert (totals.ok, totals.failed, totals.articles_failed) == (1, 0, 1)
    (error,) = totals.page_errors
    assert error.startswith("article http") and error.endswith("storage: connection refused")


def test_a_poll_that_trips_the_write_fails_alone_in_its_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: one result the store trips on (a bug in its pure pre-work, say) failed
    every result of its batch; now it fails alone, recorded as its feed's failed poll."""
    import storage.poll
    from aggregator.runtime.writer import PollWriter
    from storage.records import FeedConfig
    from tests.dbfixtures import T0, claim_one, entry, poll_result

    bad_url, good_url = FEED, FEED + "?good"
    store.sync_feeds([FeedConfig(url=bad_url), FeedConfig(url=good_url)], T0)
    bad, good = claim_one(store, bad_url, T0), claim_one(store, good_url, T0)
    real = storage.poll.identities

    def tripping(result: PollResult) -> Any:
        if result.feed_id == bad.id and result.entries:
            raise ValueError("a bug")
        return real(result)

    monkeypatch.setattr(storage.poll, "identities", tripping)

    async def write_both() -> list[Any]:
        writer = PollWriter(store)
        results = [poll_result(bad, T0, [entry(1)]), poll_result(good, T0, [entry(2)])]
        outcomes = await asyncio.gather(*(writer.write(r) for r in results),
                                        return_exceptions=True)
        await writer.aclose()
        return outcomes

    failed, written = asyncio.run(write_both())
    assert isinstance(failed, StorageError) and isinstance(written, PollSummary)
    assert written.new_items == 1
    assert [i["guid"] for i in store.iter_items(ExportFilter())] == ["guid-2"]
