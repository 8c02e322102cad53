"""Retention: per-feed limits by age and count, never removing what the feed's current document
still carries, nor an item another feed still holds; integrity holds afterwards."""

from __future__ import annotations

from datetime import timedelta

from storage.records import ArticleResult, Capture, ExportFilter, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

A, B = "https://a.example/feed", "https://b.example/feed"


def titles(store: Store) -> list[str]:
    return sorted(i["title"] for i in store.iter_items(ExportFilter()))


def test_age_limit_spares_the_current_document(store: Store) -> None:
    store.sync_feeds([FeedConfig(A, retention_days=7)], T0)
    poll(store, A, T0, [entry(1), entry(2)])
    later = T0 + timedelta(days=30)
    poll(store, A, later, [entry(2), entry(3)])  # 1 dropped out of the document; 2 is still in
    assert store.apply_retention(later) == 1
    assert titles(store) == ["Story 2", "Story 3"]
    assert store.apply_retention(later + timedelta(days=30)) == 0  # 2 and 3 are still current
    assert store.integrity_check() == []


def test_count_limit_keeps_the_newest_and_the_current_document(store: Store) -> None:
    store.sync_feeds([FeedConfig(A, retention_count=2)], T0)
    t = T0
    for n in range(5):
        t += timedelta(hours=1)
        poll(store, A, t, [entry(n)], next_check=t)
    poll(store, A, t + timedelta(hours=1), [entry(0)], next_check=t)  # 0 reappears: current
    assert store.apply_retention(t + timedelta(hours=2)) == 2
    assert titles(store) == ["Story 0", "Story 3", "Story 4"]


def test_an_item_another_feed_carries_is_kept(store: Store) -> None:
    store.sync_feeds([FeedConfig(A, retention_days=1), FeedConfig(B)], T0)
    poll(store, A, T0, [entry(1)])
    poll(store, B, T0, [entry("b", url=entry(1).url)])
    later = T0 + timedelta(days=10)
    poll(store, A, later, [entry(2)])
    assert store.apply_retention(later) == 0
    [kept, _] = list(store.iter_items(ExportFilter()))
    assert [s["feed_url"] for s in kept["sightings"]] == [B]


def test_no_limits_keep_everything(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1)])
    poll(store, A, T0 + timedelta(days=900), [entry(2)])
    assert store.apply_retention(T0 + timedelta(days=1000)) == 0
    assert titles(store) == ["Story 1", "Story 2"]


def test_deleting_items_drops_their_page_captures_and_orphan_blobs(store: Store) -> None:
    store.sync_feeds([FeedConfig(A, retention_days=1)], T0)
    poll(store, A, T0, [entry(1)])
    [pending] = store.pending_articles(T0, 5)
    page = Capture("page", pending.url, pending.url, 404, (), T0, b"not found")
    store.apply_article(pending.item_id, ArticleResult(error="fetch: 404", capture=page), T0)
    assert store.stats()["blobs"] == 1
    later = T0 + timedelta(days=3)
    poll(store, A, later, [entry(2)])
    assert store.apply_retention(later) == 1
    stats = store.stats()
    assert (stats["captures"], stats["blobs"], stats["items"]) == (0, 0, 1)
    assert store.integrity_check() == []
