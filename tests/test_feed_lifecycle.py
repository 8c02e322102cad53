"""A feed's life across restarts: permanent moves, leaving the config, and its poll history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.records import STATUS_ERROR, FeedConfig, PollResult
from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import TestServer
from tests.test_poll import poll, settings_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_feed_moved_by_permanent_redirects_survives_a_restart(
    http_server: TestServer, store: Store
) -> None:
    http_server.route("/new.xml", body=rss([Item(1, http_server.base_url)]))
    http_server.redirect("/old.xml", "/new.xml", status=301)
    old, new = http_server.url("/old.xml"), http_server.url("/new.xml")
    settings = settings_for(old)
    for _ in range(3):  # a move is trusted only once it repeats
        poll(settings, store)
    (feed,) = store.list_feeds()
    assert (feed.url, feed.config_url, feed.active, feed.item_count) == (new, old, True, 1)

    poll(settings, store)  # a restart syncs the configuration (still naming the old URL) again
    (feed,) = store.list_feeds()
    assert (feed.url, feed.active) == (new, True)
    assert http_server.hits("/new.xml") == 4
    assert store.get_feed(old) == store.get_feed(new)


def test_a_feed_left_out_of_the_config_is_kept_but_not_polled(store: Store) -> None:
    a, b = FeedConfig(url="https://a.example/feed"), FeedConfig(url="https://b.example/feed")
    store.sync_feeds([a, b], T0)
    store.sync_feeds([a], T0)
    states = {f.url: f.active for f in store.list_feeds()}
    assert states == {a.url: True, b.url: False}
    claimed = store.claim_due(T0, 10, "me", 60)
    assert [f.url for f in claimed] == [a.url]
    store.sync_feeds([a, b], T0)  # back in the file: active again, same row
    assert {f.url: f.active for f in store.list_feeds()} == {a.url: True, b.url: True}


def test_poll_history_keeps_the_last_twenty(store: Store) -> None:
    store.sync_feeds([FeedConfig(url="https://a.example/feed")], T0)
    for n in range(25):
        now = T0 + timedelta(minutes=n)
        (feed,) = store.claim_due(now, 1, "me", 60, now + timedelta(days=1))
        store.apply_poll(PollResult(
            feed_id=feed.id, lease_owner="me", polled_at=now, status=STATUS_ERROR,
            next_check=now, next_reason=f"poll {n}", interval=60, error_count=n + 1,
            http_status=500, error=f"fetch: HTTP 500 for {feed.url}",
        ))
    assert len(store.poll_history(feed.id, limit=100)) == 25
    store.apply_retention(T0 + timedelta(hours=1))  # housekeeping prunes the history
    assert len(store.poll_history(feed.id, limit=100)) == 20
    history = store.poll_history(feed.id)
    assert [h["next_reason"] for h in history] == [f"poll {n}" for n in range(24, 4, -1)]
    assert history[0]["polled_at"] == T0 + timedelta(minutes=24)
    assert history[0]["http_status"] == 500 and history[0]["status"] == "error"
