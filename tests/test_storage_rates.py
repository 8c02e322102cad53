"""``pollsql.item_rates``: the item rates of a batch's feeds in one statement (PostgreSQL and
SQLite) are ``feeds.item_rate`` of each feed, None cases included (no sightings, a history too
short, an entry a few microseconds inside the window)."""

from __future__ import annotations

from datetime import timedelta

from storage import pollsql
from storage.feeds import RATE_WINDOW_DAYS, item_rate
from storage.records import FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

URLS = [f"https://r{i}.example/feed" for i in range(4)]


def test_rates_of_many_feeds_at_once_are_each_feeds_rate(store: Store) -> None:
    store.sync_feeds([FeedConfig(url) for url in URLS], T0)
    for day in range(0, 30, 3):  # feed 0: an entry every third day; feed 1: a burst; 3: none
        poll(store, URLS[0], T0 + timedelta(days=day), [entry(f"a{day}")])
    poll(store, URLS[1], T0, [entry(f"b{i}") for i in range(5)])
    poll(store, URLS[1], T0 + timedelta(days=2, microseconds=5), [entry("b-late")])
    poll(store, URLS[2], T0 + timedelta(days=29, hours=20), [entry("c")])
    ids = []
    for url in URLS:
        feed = store.get_feed(url)
        assert feed is not None
        ids.append(feed.id)
    nows = [T0 + timedelta(days=d, hours=h) for d in (0, 1, 2, 14, 30, 45) for h in (0, 7)]
    nows += [T0 + timedelta(days=6), T0 + timedelta(days=3 + RATE_WINDOW_DAYS)]  # on the bounds
    asked = [(feed_id, now) for now in nows for feed_id in ids]
    with store.db.read() as conn:
        one_by_one = [item_rate(conn, feed_id, now, RATE_WINDOW_DAYS) for feed_id, now in asked]
        assert pollsql.item_rates(conn, asked) == one_by_one
        assert pollsql.item_rates(conn, asked[:1]) == one_by_one[:1]
        assert pollsql.item_rates(conn, []) == []
    assert any(rate is None for rate in one_by_one) and any(one_by_one)
