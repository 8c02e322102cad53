"""The rest of the Store's surface: page captures for re-extraction, the item rate the polling
policy reads, stats, concurrent polls of one story on PostgreSQL, and the documented example."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from storage.exportschema import item_validator
from storage.records import ArticleResult, Capture, ExportFilter, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, claim_one, entry, poll, poll_result

A, B = "https://a.example/feed", "https://b.example/feed"
DOC = Path(__file__).resolve().parent.parent / "docs" / "export-format.md"


def test_page_captures_come_back_for_reextraction(store: Store) -> None:
    store.sync_feeds([FeedConfig(A), FeedConfig(B)], T0)
    poll(store, A, T0, [entry(1), entry(2)])
    poll(store, B, T0, [entry(3)])
    for pending in store.pending_articles(T0, 10):
        body = f"<p>{pending.url}</p>".encode()
        headers = (("content-type", "text/html"),)
        page = Capture("page", pending.url, pending.url + "?amp", 200, headers, T0, body)
        store.apply_article(pending.item_id, ArticleResult(error="extract: x", capture=page), T0)
    got = list(store.iter_page_captures(None, None))
    assert len(got) == 3
    item_id, cap = got[0]
    assert item_id == store.item_id_for_url(cap.url)
    assert cap.body == f"<p>{cap.url}</p>".encode() and cap.final_url == cap.url + "?amp"
    assert cap.headers == (("content-type", "text/html"),)
    assert len(list(store.iter_page_captures(A, None))) == 2
    assert list(store.iter_page_captures(None, T0 + timedelta(seconds=1))) == []


def test_recent_item_rate_ignores_the_first_backlog(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    feed = store.get_feed(A)
    assert feed is not None
    assert store.recent_item_rate(feed.id, T0) is None
    poll(store, A, T0, [entry(i) for i in range(50)])  # the backlog of the first poll
    assert store.recent_item_rate(feed.id, T0 + timedelta(hours=2)) is None  # too short
    t = T0
    for day in range(1, 5):
        t = T0 + timedelta(days=day)
        poll(store, A, t, [entry(f"d{day}-{i}") for i in range(3)], next_check=t)
    rate = store.recent_item_rate(feed.id, t)
    assert rate == pytest.approx(12 / 4)


def test_stats_count_what_is_stored(store: Store) -> None:
    store.sync_feeds([FeedConfig(A), FeedConfig(B)], T0)
    poll(store, A, T0, [entry(1), entry(2)])
    poll(store, B, T0, [entry("b", url=entry(1).url)])
    stats = store.stats()
    assert (stats["feeds"], stats["items"], stats["sightings"], stats["revisions"]) == (2, 2, 3, 2)
    assert stats["duplicates_folded"] == 1 and stats["articles"] == {"pending": 2}


@pytest.mark.postgres
def test_postgres_two_feeds_applying_one_story_at_once_make_one_item(
    store_url_factory: Callable[[str], str],
) -> None:
    url = store_url_factory("postgres")
    stores = [Store.open(url), Store.open(url)]
    try:
        stores[0].sync_feeds([FeedConfig(A), FeedConfig(B)], T0)
        shared = [entry(i, key=f"{n}-{i}") for n in "ab" for i in range(30)]
        results = [
            poll_result(claim_one(stores[0], feed, T0, owner), T0,
                        [e for e in shared if e.key.startswith(owner)], lease_owner=owner)
            for feed, owner in ((A, "a"), (B, "b"))
        ]  # fmt: skip
        barrier = threading.Barrier(2)

        def apply(i: int) -> None:
            barrier.wait()
            stores[i].apply_poll(results[i])

        threads = [threading.Thread(target=apply, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = list(stores[0].iter_items(ExportFilter()))
        assert len(got) == 30
        assert all(len(i["sightings"]) == 2 for i in got)
    finally:
        for st in stores:
            st.close()


def test_the_documented_example_is_a_valid_item() -> None:
    block = re.search(r"```json\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert block is not None
    item = json.loads(block.group(1))
    assert item.pop("format_version") == 2
    assert list(item_validator().iter_errors(item)) == []
