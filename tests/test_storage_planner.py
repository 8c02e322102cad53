"""PostgreSQL's planner gets statistics on a young archive (``storage.planner``, issue 14): the
first batch of polls that creates items analyzes the tables a poll looks up by lists, once;
SQLite is left alone. And the index of many documents, written in one statement on
PostgreSQL, is the index of each written alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from storage import planner, searchindex
from storage.records import FeedConfig, PollSummary
from storage.store import Store
from tests.dbfixtures import T0, claim_one, entry, poll_result

URL = "https://f.example/feed"
ROWS = text("SELECT reltuples FROM pg_class WHERE oid = 'items'::regclass")  # as last analyzed


def postgres(store: Store) -> bool:
    return store.db.engine.dialect.name == "postgresql"


def batch(store: Store, n: int, offset: int = 0) -> list[PollSummary | Exception]:
    now = T0 + timedelta(hours=offset)
    feed = claim_one(store, URL, now)
    entries = [entry(offset * 100 + i) for i in range(n)]
    return list(store.apply_polls([poll_result(feed, now, entries)]))


def test_the_first_batch_with_new_items_gives_the_planner_statistics(store: Store) -> None:
    store.sync_feeds([FeedConfig(URL)], T0)
    if not postgres(store):
        with store.db.write() as conn:
            assert planner.analyze_unknown(conn) == []
        return
    with store.db.read() as conn:
        assert planner.unanalyzed(conn) == ["items", "sightings"]
    [summary] = batch(store, 30)
    assert isinstance(summary, PollSummary) and summary.new_items == 30
    with store.db.read() as conn:
        assert planner.unanalyzed(conn) == []
        assert conn.execute(ROWS).scalar_one() == 30


def test_statistics_are_taken_once_per_store(store: Store) -> None:
    """Later batches do not look again: autovacuum keeps the statistics from there on."""
    if not postgres(store):
        pytest.skip("PostgreSQL only")
    store.sync_feeds([FeedConfig(URL)], T0)
    batch(store, 0)  # no new items: nothing to analyze yet
    with store.db.read() as conn:
        assert planner.unanalyzed(conn) == ["items", "sightings"]
    batch(store, 3, offset=1)
    batch(store, 3, offset=2)
    with store.db.read() as conn:
        assert planner.unanalyzed(conn) == []
        assert conn.execute(ROWS).scalar_one() == 3  # after the first batch, not the second


def test_many_documents_at_once_index_as_each_alone(store: Store) -> None:
    """One write of several documents (one statement on PostgreSQL, repeats keep the last)
    finds what writing them one by one finds."""
    store.sync_feeds([FeedConfig(URL)], T0)
    batch(store, 3)
    with store.db.read() as conn:
        ids = sorted(int(i) for i in conn.execute(text("SELECT id FROM items")).scalars())
    docs = [searchindex.doc(i, f'Title "{n}" \\ {{a,b}} NULL', f"<p>word{n} body</p>", None)
            for n, i in enumerate(ids)]  # fmt: skip
    with store.db.write() as conn:
        searchindex.write(conn, docs)
    hits = {n: {h.item_id for h in store.search(f"word{n}").hits} for n in range(3)}
    assert hits == {n: {i} for n, i in enumerate(ids)}
    assert {h.item_id for h in store.search("null").hits} == set(ids)
    if postgres(store):  # the same item twice in one write: the last one stands
        again = [searchindex.doc(ids[0], "First", "", None),
                 searchindex.doc(ids[0], "Second", "", None)]  # fmt: skip
        with store.db.write() as conn:
            searchindex.write(conn, again)
        assert {h.item_id for h in store.search("second").hits} == {ids[0]}
        assert not store.search("first").hits
