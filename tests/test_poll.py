"""The poll path end to end: a real HTTP server on 127.0.0.1, real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aggregator.config.settings import Settings
from aggregator.runtime.oneshot import OneShot
from aggregator.runtime.worker import Totals
from storage.records import ExportFilter
from storage.store import Store
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer


def settings_for(*urls: str, **overrides: Any) -> Settings:
    http = {"allow_private_networks": True, "per_host_delay": 0, "timeout": 3,
            "respect_robots": False}
    http.update(overrides.pop("http", {}))
    return Settings.model_validate({
        "http": http,
        "defaults": {"fetch_articles": overrides.pop("fetch_articles", False)},
        "feeds": [{"url": url} for url in urls],
        **overrides,
    })


def poll(settings: Settings, store: Store) -> Totals:
    store.sync_feeds(settings.feed_configs(), _now())
    return asyncio.run(OneShot(settings, store).poll_once())


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def items_of(store: Store) -> list[dict[str, Any]]:
    return list(store.iter_items(ExportFilter()))


def test_conditional_get_stores_each_entry_once(http_server: TestServer, store: Store) -> None:
    base = http_server.base_url
    http_server.route("/feed.xml", body=rss([Item(n, base) for n in (1, 2, 3)]), etag='"v1"',
                      headers={"Content-Type": "application/rss+xml"})
    settings = settings_for(http_server.url("/feed.xml"))

    first = poll(settings, store)
    assert (first.ok, first.failed, first.new_items) == (1, 0, 3)

    second = poll(settings, store)
    assert (second.not_modified, second.new_items) == (1, 0)
    assert http_server.requests_for("/feed.xml")[-1].headers.get("if-none-match") == '"v1"'

    http_server.route("/feed.xml", body=rss([Item(n, base) for n in (1, 2, 3, 4)]), etag='"v2"')
    third = poll(settings, store)
    assert (third.ok, third.new_items) == (1, 1)
    exported = items_of(store)
    assert sorted(i["title"] for i in exported) == [f"Story number {n}" for n in (1, 2, 3, 4)]
    one = next(i for i in exported if i["guid"] == "urn:story:1")
    assert one["published"] == "2021-04-20T17:05:00+06:00"
    assert one["url"] == f"{base}/news/1.html"
    assert one["feed_url"] == http_server.url("/feed.xml")
    feed = store.get_feed(http_server.url("/feed.xml"))
    assert feed is not None and feed.etag == '"v2"' and feed.item_count == 4


def test_gzip_and_redirects_are_followed(http_server: TestServer, store: Store) -> None:
    http_server.route("/real.xml", body=rss([Item(1, http_server.base_url)]), gzip=True)
    http_server.redirect("/moved.xml", "/real.xml", status=302)
    totals = poll(settings_for(http_server.url("/moved.xml")), store)
    assert (totals.ok, totals.new_items) == (1, 1)
    assert http_server.requests_for("/real.xml")[0].headers["accept-encoding"].startswith("gzip")


def test_one_failing_feed_never_stops_the_others(http_server: TestServer, store: Store) -> None:
    http_server.route("/good.xml", body=rss([Item(1, http_server.base_url)]))
    http_server.route("/broken.xml", status=500, body=b"oops")
    http_server.route("/malformed.xml", body=b"<?xml version='1.0'?><rss><<<\x00 not a feed",
                      headers={"Content-Type": "application/rss+xml"})
    http_server.route("/slow.xml", body=rss([]), delay=10)
    http_server.route("/html.xml", body=b"<!doctype html><html><body><p>hi</p></body></html>",
                      headers={"Content-Type": "text/html"})
    urls = [http_server.url(p) for p in
            ("/good.xml", "/broken.xml", "/malformed.xml", "/slow.xml", "/html.xml")]
    totals = poll(settings_for(*urls, http={"timeout": 3}), store)
    assert (totals.ok, totals.failed, totals.new_items) == (1, 4, 1)
    states = {f.url: f for f in store.list_feeds()}
    assert states[urls[0]].last_status == "ok" and states[urls[0]].error_count == 0
    broken = states[urls[1]]
    assert broken.last_status == "error" and broken.last_http_status == 500
    assert broken.error_count == 1 and "500" in (broken.last_error or "")
    assert broken.next_check > broken.last_polled  # type: ignore[operator]
    assert states[urls[2]].last_error and states[urls[2]].last_error.startswith("parse:")
    assert states[urls[3]].last_error and states[urls[3]].last_error.startswith("fetch:")
    assert states[urls[4]].last_error and "feed" in states[urls[4]].last_error


def test_errors_keep_the_validators(http_server: TestServer, store: Store) -> None:
    http_server.route("/feed.xml", body=rss([Item(1, http_server.base_url)]), etag='"v1"')
    settings = settings_for(http_server.url("/feed.xml"))
    poll(settings, store)
    http_server.route("/feed.xml", status=503, body=b"busy")
    assert poll(settings, store).failed == 1
    feed = store.get_feed(http_server.url("/feed.xml"))
    assert feed is not None and feed.etag == '"v1"'


def test_articles_are_fetched_and_failures_keep_the_item(
    http_server: TestServer, store: Store
) -> None:
    base = http_server.base_url
    items = [Item(1, base), Item(2, base)]
    http_server.route("/feed.xml", body=rss(items))
    http_server.route("/news/1.html", body=article_page(items[0]),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    # /news/2.html is not routed: 404.
    totals = poll(settings_for(http_server.url("/feed.xml"), fetch_articles=True), store)
    assert (totals.new_items, totals.articles_ok, totals.articles_failed) == (2, 1, 1)
    by_guid = {i["guid"]: i for i in items_of(store)}
    good = by_guid["urn:story:1"]
    assert good["article"]["title"] == "Story number 1"
    assert good["article"]["text"].startswith("Paragraph 1 of story 1")
    assert "Home" not in good["article"]["text"]
    missing = by_guid["urn:story:2"]
    assert missing["article"] is None
    assert missing["summary"] == "Teaser of story 2."
    assert missing["article_status"] == "failed"


@pytest.mark.parametrize("fetch_articles", [False])
def test_polling_twice_is_idempotent(http_server: TestServer, store: Store,
                                     fetch_articles: bool) -> None:
    # No validators: the server answers 200 each time and the store must fold the repeats.
    http_server.route("/feed.xml", body=rss([Item(n, http_server.base_url) for n in range(5)]))
    settings = settings_for(http_server.url("/feed.xml"), fetch_articles=fetch_articles)
    assert poll(settings, store).new_items == 5
    assert poll(settings, store).new_items == 0
    assert len(items_of(store)) == 5


def test_parsing_in_worker_processes(http_server: TestServer, store: Store) -> None:
    http_server.route("/feed.xml", body=rss([Item(n, http_server.base_url) for n in range(3)]))
    http_server.route("/bad.xml", body=b"<html><body>not a feed</body></html>")
    settings = settings_for(http_server.url("/feed.xml"), http_server.url("/bad.xml"),
                            service={"parse_workers": 1})
    totals = poll(settings, store)
    assert (totals.ok, totals.failed, totals.new_items) == (1, 1, 3)
    bad = store.get_feed(http_server.url("/bad.xml"))
    assert bad is not None and (bad.last_error or "").startswith("parse: not a feed")
    assert {i["published"] for i in items_of(store)} == {"2021-04-20T17:05:00+06:00"}


def test_failed_articles_are_retried_after_their_back_off_then_given_up(
    http_server: TestServer, store: Store
) -> None:
    from datetime import timedelta

    from aggregator.runtime.pipeline import ARTICLE_ATTEMPTS

    item = Item(1, http_server.base_url)
    http_server.route("/feed.xml", body=rss([item]))
    settings = settings_for(http_server.url("/feed.xml"), fetch_articles=True)
    store.sync_feeds(settings.feed_configs(), _now())
    start = _now()

    def poll_at(offset: timedelta) -> Totals:
        return asyncio.run(OneShot(settings, store, clock=lambda: start + offset).poll_once())

    assert poll_at(timedelta(0)).articles_failed == 1  # the page is a 404
    http_server.route("/news/1.html", body=article_page(item),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    assert poll_at(timedelta(minutes=5)).articles_ok == 0  # backing off: 15 minutes
    assert poll_at(timedelta(minutes=20)).articles_ok == 1
    (exported,) = items_of(store)
    assert exported["article"]["title"] == "Story number 1"

    http_server.route("/feed.xml", body=rss([Item(2, http_server.base_url)]))
    fetched = [poll_at(timedelta(days=2 * n + 1)).articles_failed for n in range(ARTICLE_ATTEMPTS)]
    assert fetched == [1] * ARTICLE_ATTEMPTS  # /news/2.html stays a 404 ...
    assert poll_at(timedelta(days=2 * ARTICLE_ATTEMPTS + 1)).articles_failed == 0  # ... given up
    assert http_server.hits("/news/2.html") == ARTICLE_ATTEMPTS
