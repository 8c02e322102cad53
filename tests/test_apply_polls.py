"""apply_polls (group commit): a batch equals its results applied one by one; a lost lease or a
failing result loses only its own slot; replay is a no-op; the method never raises; concurrent
batches on PostgreSQL neither deadlock nor duplicate a story."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from storage import items as item_rows
from storage.bulk import insert_rows, reserve_ids
from storage.engine import Database
from storage.errors import LeaseLost, StorageError
from storage.records import (
    STATUS_ERROR,
    STATUS_NOT_MODIFIED,
    Capture,
    ExportFilter,
    FeedConfig,
    FeedState,
    PollResult,
    PollSummary,
)
from storage.store import Store
from storage.tables import items as items_t
from tests.dbfixtures import T0, entry, poll_result

URLS = [f"https://f{i}.example/feed" for i in range(6)]


def backend(store: Store) -> str:
    return "postgres" if store.db.engine.dialect.name == "postgresql" else "sqlite"


def claim_all(store: Store, now: datetime, owner: str = "w1") -> dict[str, FeedState]:
    return {f.url: f for f in store.claim_due(now, 1000, owner, 300)}


def archive(store: Store) -> dict[str, Any]:
    """Everything a poll writes: items (with sightings and revisions), feeds, poll history."""
    feeds = store.list_feeds()
    return {
        "items": list(store.iter_items(ExportFilter())),
        "feeds": feeds,
        "history": {f.url: store.poll_history(f.id) for f in feeds},
        "stats": store.stats(),
    }


def round_one(feeds: dict[str, FeedState], now: datetime) -> list[PollResult]:
    """New entries, a story two feeds share (folded by its link), an error."""
    body = b"<rss>" + b"x" * 3000 + b"</rss>"
    cap = Capture("feed", URLS[0], URLS[0], 200, (("content-type", "text/xml"),), now, body)
    f = [feeds[u] for u in URLS[:4]]
    return [
        poll_result(f[0], now, [entry(i) for i in range(1, 6)], etag='"a1"', capture=cap),
        poll_result(
            f[1],
            now,
            [entry("b", url="https://news.example/story/1", title="S copy")],
        ),
        poll_result(
            f[2],
            now,
            [],
            status=STATUS_ERROR,
            http_status=None,
            error_count=1,
            error="fetch: boom for " + URLS[2],
        ),
        poll_result(f[3], now, [entry(2, key="d2"), entry(30)], title="Feed D"),
    ]


def round_two(feeds: dict[str, FeedState], now: datetime) -> list[PollResult]:
    """A 304, changed content (a revision), a recovery, a feed that lists a story again."""
    f = [feeds[u] for u in URLS[:4]]
    changed = entry(30, title="Story 30, updated")
    return [
        poll_result(f[0], now, [], status=STATUS_NOT_MODIFIED, http_status=304, etag=None),
        poll_result(f[3], now, [entry(2, key="d2"), changed, entry(31)]),
        poll_result(f[2], now, [entry(40)], error_count=0),
        poll_result(f[1], now, [entry(1, key="again")]),
    ]


def two_rounds(store: Store, apply: Callable[[Sequence[PollResult]], Any]) -> None:
    store.sync_feeds([FeedConfig(u) for u in URLS[:4]], T0)
    apply(round_one(claim_all(store, T0), T0))
    t1 = T0 + timedelta(hours=1)
    apply(round_two(claim_all(store, t1), t1))


def test_a_batch_equals_its_results_applied_one_by_one(
    store: Store, store_url_factory: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    batched: list[list[PollSummary | StorageError]] = []
    with caplog.at_level(logging.WARNING, logger="storage"):
        two_rounds(store, lambda results: batched.append(store.apply_polls(results)))
    assert "retrying one by one" not in caplog.text  # equal as a batch, not by the fallback
    with Store.open(store_url_factory(backend(store))) as single:
        one_by_one: list[list[PollSummary]] = []
        two_rounds(single, lambda rs: one_by_one.append([single.apply_poll(r) for r in rs]))
        assert batched == one_by_one
        assert archive(store) == archive(single)
    assert batched[0][0] == PollSummary(new_items=5)
    assert batched[0][1] == PollSummary(new_sightings=1, duplicates_folded=1)
    assert batched[1][0] == PollSummary()
    assert batched[1][1] == PollSummary(new_items=1, revisions=1)


def test_a_lost_lease_in_the_middle_loses_only_its_own_slot(store: Store) -> None:
    store.sync_feeds([FeedConfig(u) for u in URLS[:3]], T0)
    feeds = claim_all(store, T0, "a")
    later = T0 + timedelta(seconds=400)
    store.claim_due(later, 1000, "b", 300)  # a's leases expired, b holds every feed now
    store.release(feeds[URLS[0]].id, "b")
    store.release(feeds[URLS[2]].id, "b")
    claim_all(store, later, "a")  # a gets the first and the last back, b keeps the middle one
    results = [poll_result(feeds[u], later, [entry(u)], lease_owner="a") for u in URLS[:3]]
    got = store.apply_polls(results)
    assert got[0] == got[2] == PollSummary(new_items=1)
    assert isinstance(got[1], LeaseLost) and URLS[1] in str(got[1])
    assert [i["feed_url"] for i in store.iter_items(ExportFilter())] == [URLS[0], URLS[2]]
    middle = store.get_feed(URLS[1])
    assert middle is not None and middle.last_polled is None
    assert store.poll_history(middle.id) == []


def test_a_failing_result_is_isolated_and_writes_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.sync_feeds([FeedConfig(u) for u in URLS[:3]], T0)
    feeds = claim_all(store, T0)
    naive = T0.replace(tzinfo=None)  # the store refuses a naive datetime: this feed fails
    results = [
        poll_result(feeds[URLS[0]], T0, [entry(1), entry(2)]),
        poll_result(feeds[URLS[1]], T0, [entry(3), entry(4, published=naive)]),
        poll_result(feeds[URLS[2]], T0, [entry(5)]),
    ]
    with caplog.at_level(logging.WARNING, logger="storage"):
        got = store.apply_polls(results)
    assert got[0] == PollSummary(new_items=2) and got[2] == PollSummary(new_items=1)
    assert isinstance(got[1], StorageError) and "naive datetime" in str(got[1])
    assert "retrying one by one" in caplog.text
    assert sorted(i["title"] for i in store.iter_items(ExportFilter())) == [
        "Story 1", "Story 2", "Story 5"
    ]  # fmt: skip
    failed = store.get_feed(URLS[1])
    assert failed is not None and failed.last_polled is None
    assert store.poll_history(failed.id) == []
    # its lease is still held: the service may retry it, or let the lease expire
    assert store.claim_due(T0, 10, "w2", 60) == []


def test_replaying_a_batch_is_a_no_op(store: Store) -> None:
    store.sync_feeds([FeedConfig(u) for u in URLS[:4]], T0)
    results = round_one(claim_all(store, T0), T0)
    first = store.apply_polls(results)
    assert all(isinstance(s, PollSummary) for s in first)
    before = archive(store)
    assert store.apply_polls(results) == [PollSummary()] * len(results)
    assert store.apply_polls(results[1:2] + results[:1]) == [PollSummary()] * 2
    assert archive(store) == before


def test_a_feed_twice_in_one_batch_is_applied_once(store: Store) -> None:
    store.sync_feeds([FeedConfig(URLS[0])], T0)
    result = poll_result(claim_all(store, T0)[URLS[0]], T0, [entry(1)])
    assert store.apply_polls([result, result]) == [PollSummary(new_items=1), PollSummary()]
    assert len(list(store.iter_items(ExportFilter()))) == 1


def test_an_unreachable_database_gives_every_slot_its_error() -> None:
    down = Store(Database("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2"))
    try:
        feed = FeedState(id=1, url=URLS[0], title=None, tags=(), interval=900.0,
                         next_check=T0, next_reason="new feed")  # fmt: skip
        got = down.apply_polls([poll_result(feed, T0, [entry(1)])] * 3)
    finally:
        down.close()
    assert len(got) == 3
    assert all(isinstance(s, StorageError) and "apply_polls failed" in str(s) for s in got)
    assert down.apply_polls([]) == []


def in_threads(
    stores: list[Store], batches: list[list[PollResult]], size: int
) -> list[list[PollSummary | StorageError]]:
    """Store ``i`` applies ``batches[i]``, ``size`` results per call, both starting at once."""
    got: list[list[PollSummary | StorageError]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def run(i: int) -> None:
        barrier.wait()
        for start in range(0, len(batches[i]), size):
            got[i] += stores[i].apply_polls(batches[i][start : start + size])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


@pytest.mark.postgres
def test_postgres_concurrent_overlapping_batches_neither_deadlock_nor_duplicate(
    store_url_factory: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    """Two instances apply batches whose feeds carry the same stories, in opposite orders, each
    with a result for a feed the other holds; every story stays one item, no batch fails."""
    url = store_url_factory("postgres")
    stores = [Store.open(url), Store.open(url)]
    urls = [f"https://p{i}.example/feed" for i in range(24)]
    rng = random.Random(7)
    try:
        stores[0].sync_feeds([FeedConfig(u) for u in urls], T0)
        for rnd in range(4):
            now = T0 + timedelta(hours=rnd)
            mine = [stores[0].claim_due(now, 12, "a", 300), stores[1].claim_due(now, 12, "b", 300)]
            batches: list[list[PollResult]] = [[], []]
            for i, owner in enumerate("ab"):
                for feed in mine[i]:
                    stories = rng.sample(range(40), 15)
                    batches[i].append(poll_result(
                        feed, now, [entry(f"{rnd}-{s}", key=f"{feed.id}-{rnd}-{s}")
                                 for s in stories],
                        lease_owner=owner, next_check=now + timedelta(minutes=30)))  # fmt: skip
                stranger = mine[1 - i][0]  # held by the other instance: its slot is LeaseLost
                late = now + timedelta(seconds=1)  # not the holder's poll time (that is a replay)
                batches[i].insert(6, poll_result(stranger, late, [entry(f"{rnd}-0")],
                                                 lease_owner=owner))  # fmt: skip
            batches[1].reverse()
            with caplog.at_level(logging.WARNING, logger="storage"):
                got = in_threads(stores, batches, 5)
            for i in range(2):
                lost = [s for s in got[i] if isinstance(s, LeaseLost)]
                assert len(lost) == 1 and len(got[i]) == 13
                assert all(isinstance(s, PollSummary) for s in got[i] if s not in lost)
            assert "retrying one by one" not in caplog.text  # no deadlock, no failed batch
        items = list(stores[0].iter_items(ExportFilter()))
        titles = [i["title"] for i in items]
        assert len(titles) == len(set(titles))  # one item per story
        assert sum(len(i["sightings"]) for i in items) == 24 * 4 * 15  # none lost
        assert all(len(stores[1].poll_history(f.id)) == 4 for f in stores[1].list_feeds())
    finally:
        for st in stores:
            st.close()


def test_the_rate_follows_new_items_at_once_and_a_quiet_feed_within_the_hour(store: Store) -> None:
    """The stored rate is recounted when a poll brings new items, else once an hour (issue 2:
    not two queries per 304), so a feed that goes quiet sees it fall, an hour late at most."""
    store.sync_feeds([FeedConfig(URLS[0])], T0)

    def apply(now: datetime, entries: Sequence[Any], **over: Any) -> float | None:
        feed = claim_all(store, now)[URLS[0]]
        [got] = store.apply_polls([poll_result(feed, now, entries, next_check=now, **over)])
        assert isinstance(got, PollSummary)
        state = store.get_feed(URLS[0])
        assert state is not None
        return state.items_per_day

    assert apply(T0, [entry(i) for i in range(10)]) is None  # the backlog, and too short
    t = T0
    for day in range(1, 4):
        t = T0 + timedelta(days=day)
        assert apply(t, [entry(f"{day}-{i}") for i in range(4)]) == pytest.approx(4.0)
    rate = store.recent_item_rate(feed_id(store), t)
    quiet = t + timedelta(minutes=20)
    not_modified = {"status": STATUS_NOT_MODIFIED, "http_status": 304}
    assert apply(quiet, [], **not_modified) == rate  # the same hour: not recounted
    later = t + timedelta(days=2, minutes=5)
    fallen = apply(later, [], **not_modified)
    assert fallen == pytest.approx(store.recent_item_rate(feed_id(store), later))
    assert fallen is not None and rate is not None and fallen < rate


def feed_id(store: Store) -> int:
    feed = store.get_feed(URLS[0])
    assert feed is not None
    return feed.id


def test_the_bulk_insert_writes_what_the_column_types_write(store: Store) -> None:
    """``bulk.insert_rows`` bypasses the TypeDecorators: the stored values must not differ (NUL
    stripped, naive UTC in SQLAlchemy's format, JSON null and lists)."""
    store.sync_feeds([FeedConfig(URLS[0])], T0)
    feed = store.get_feed(URLS[0])
    assert feed is not None
    plus5 = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    e = entry("x", title="Ti\x00tle", authors=("A\x00nn", "Bo"), published=plus5)
    row = item_rows.new_row(feed.id, "uid-bulk", e, T0 + timedelta(microseconds=7), "off")
    with store.db.write() as conn:
        [item_id] = reserve_ids(conn, items_t, 1)
        insert_rows(conn, items_t, [row | {"id": item_id}], keyed=True)
        conn.execute(items_t.insert(), [row | {"uid": "uid-core"}])
        stored = [
            tuple(r)[2:]  # all but id and uid
            for r in conn.exec_driver_sql("SELECT * FROM items ORDER BY id").all()
        ]
    assert stored[0] == stored[1]


ODD = ['a"b', "c\\d", "e,f", "{g}", "h\x00i", " NULL ", "NULL", "", "ünï", "\\\"", "x\ny\tz"]


@pytest.mark.parametrize("odd", ODD)
def test_the_bulk_insert_keeps_every_character(store: Store, odd: str) -> None:
    """PostgreSQL's ``COPY`` escapes each value itself, SQLite binds it: quotes, backslashes,
    commas, braces, the word NULL, None and microseconds must arrive as a Core insert writes
    them, in text and JSON columns alike."""
    store.sync_feeds([FeedConfig(URLS[0])], T0)
    fid = feed_id(store)
    e = entry("odd", title=odd, summary=odd, guid=None, authors=(odd, "Bo"),
              published=T0 + timedelta(microseconds=1), content_html=None)  # fmt: skip
    row = item_rows.new_row(fid, "uid-odd", e, T0, "off") | {"article": {"text": odd}}
    other = item_rows.new_row(fid, "uid-2", entry(2), T0, "off")
    with store.db.write() as conn:
        first, second = reserve_ids(conn, items_t, 2)
        insert_rows(conn, items_t, [row | {"id": first}, other | {"id": second}], keyed=True)
        conn.execute(items_t.insert(), [row | {"uid": "uid-core"}])
        stored = [tuple(r)[2:] for r in conn.exec_driver_sql("SELECT * FROM items ORDER BY id")]
    assert first < second
    assert stored[0] == stored[2]


def test_keys_and_links_with_quotes_backslashes_commas_and_nul_are_found_again(
    store: Store,
) -> None:
    """Lists of keys are sent as array literals on PostgreSQL: every character must survive."""
    store.sync_feeds([FeedConfig(URLS[0])], T0)
    odd = ['a"b', "c\\d", "e,f", "{g}", "h\x00i", " NULL ", "", "ünï"]
    entries = [entry(i, key=k, guid=k, url=f"https://news.example/{k}") for i, k in enumerate(odd)]
    feed = claim_all(store, T0)[URLS[0]]
    [first] = store.apply_polls([poll_result(feed, T0, entries)])
    assert first == PollSummary(new_items=len(odd))
    t1 = T0 + timedelta(hours=1)
    feed = claim_all(store, t1)[URLS[0]]
    [again] = store.apply_polls([poll_result(feed, t1, entries)])
    assert again == PollSummary()
    assert len(list(store.iter_items(ExportFilter()))) == len(odd)


def test_a_batch_reads_each_feeds_sightings_as_the_feed_alone_would(store: Store) -> None:
    """``pollsql.feeds_sightings`` (one query for a batch's feeds) gives each feed the rows
    ``feed_sightings`` gives it: by key or link, never another feed's, a NUL in a link too."""
    from storage import pollsql
    from storage.identity import document_keys

    store.sync_feeds([FeedConfig(u) for u in URLS[:3]], T0)
    feeds = claim_all(store, T0)
    shared = [entry(i, url=f"https://news.example/shared/{i % 3}") for i in range(12)]
    store.apply_polls([poll_result(feeds[u], T0, shared[n::3]) for n, u in enumerate(URLS[:3])])
    asked = {  # feed 0 by link (another feed's link too), 1 by key, 2 by a link with a NUL
        feeds[URLS[0]].id: [entry(99, url="https://news.example/shared/0"),
                            entry(96, url="https://news.example/shared/1")],
        feeds[URLS[1]].id: [entry(i) for i in range(12)],
        feeds[URLS[2]].id: [entry(97, url="https://news.example/shar\x00ed/2"), entry(5),
                            entry(98, url=None)],
    }  # fmt: skip
    wanted = {f: (list(document_keys(es).keys), es) for f, es in asked.items()}
    with store.db.write() as conn:
        alone = {f: pollsql.feed_sightings(conn, f, keys, entries)
                 for f, (keys, entries) in wanted.items()}  # fmt: skip
        together = pollsql.feeds_sightings(conn, wanted)
    assert together == alone
    assert [len(rows) for rows in alone.values()] == [4, 4, 4]


def test_a_batch_reads_each_feeds_fold_candidates_as_the_feed_alone_would(store: Store) -> None:
    """``pollsql.fold_candidates_of`` (one query for a batch's feeds, CHUNK values at a time)
    gives each feed the rows ``fold_candidates`` gives it: by canonical URL, fingerprint or uid,
    never an item only another feed asked for."""
    from storage import pollsql

    store.sync_feeds([FeedConfig(u) for u in URLS[:2]], T0)
    feeds = claim_all(store, T0)
    store.apply_polls([poll_result(feeds[URLS[0]], T0, [entry(i) for i in range(700)])])
    with store.db.write() as conn:
        made = [(r.canonical_url, r.fingerprint, r.uid) for r in conn.execute(
            items_t.select().order_by(items_t.c.id))]  # fmt: skip
    asked = {  # 1 by canonical URLs and uids, 2 by fingerprints (more than CHUNK values)
        1: ({c for c, _, _ in made[:300]} | {"https://nowhere.example/"},
            {u for _, _, u in made[250:400]}),
        2: ({p for _, p, _ in made[100:700]}, {"no-such-uid"}),
        3: ({"https://nowhere.example/"}, set()),
    }  # fmt: skip
    with store.db.write() as conn:
        alone = {f: pollsql.fold_candidates(conn, [asked[f]]) for f in asked}
        together = pollsql.fold_candidates_of(conn, asked)
    assert together == alone
    assert [len(rows) for rows in alone.values()] == [400, 600, 0]


def test_a_batch_reads_its_fold_candidates_in_one_query_and_sees_its_own_new_items(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold candidates of a batch's new entries are read once for all its feeds; a later
    poll that asks for an item an earlier poll of the batch created reads its own, and folds."""
    from storage import pollsql

    reads: list[int] = []
    real = pollsql.fold_candidates

    def counted(conn: Any, asked: Any) -> list[Any]:
        asked = list(asked)
        reads.append(len(asked))
        return real(conn, asked)

    monkeypatch.setattr(pollsql, "fold_candidates", counted)
    store.sync_feeds([FeedConfig(u) for u in URLS[:4]], T0)
    feeds = claim_all(store, T0)
    shared = "https://news.example/story/shared"
    got = store.apply_polls([
        poll_result(feeds[URLS[0]], T0, [entry(i) for i in range(5)]),
        poll_result(feeds[URLS[1]], T0, [entry(10 + i) for i in range(5)]),
        poll_result(feeds[URLS[2]], T0, [entry("a", url=shared, title="Shared")]),
        poll_result(feeds[URLS[3]], T0, [entry("b", url=shared, title="Shared, again")]),
    ])  # fmt: skip
    assert [s.new_items for s in got if isinstance(s, PollSummary)] == [5, 5, 1, 0]
    # the batch's read, then the last poll's own (its story is new)
    assert reads == [1, 1]
    [story] = [i for i in store.iter_items(ExportFilter()) if i["url"] == shared]
    assert len(story["sightings"]) == 2


def test_new_items_of_a_batch_are_numbered_in_poll_order_and_indexed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch reserves ids for its unknown entries and inserts its new items with its other
    rows once enough are held, not one insert per poll; ids ascend in poll and entry order, and
    each item has its sighting, its first revision and its search index row."""
    from storage import pollsql

    inserts: list[int] = []
    real = pollsql.insert_rows

    def counted(conn: Any, table: Any, rows: Any, **kw: Any) -> None:
        if table.name == "items" and rows:
            inserts.append(len(rows))
        real(conn, table, rows, **kw)

    monkeypatch.setattr(pollsql, "insert_rows", counted)
    store.sync_feeds([FeedConfig(u) for u in URLS[:3]], T0)
    feeds = claim_all(store, T0)
    got = store.apply_polls([
        poll_result(feeds[URLS[0]], T0, [entry(f"a{i}") for i in range(3)]),
        poll_result(feeds[URLS[1]], T0, [entry("b0"), entry("b1")]),
        poll_result(feeds[URLS[2]], T0, [entry(f"c{i}") for i in range(300)]),
    ])  # fmt: skip
    assert [s.new_items for s in got if isinstance(s, PollSummary)] == [3, 2, 300]
    assert inserts == [305]  # written once the rows held passed 256 (PostgreSQL: 64)
    with store.db.write() as conn:
        order = [r.title for r in conn.execute(items_t.select().order_by(items_t.c.id))]
    assert order == [f"Story {k}" for k in ("a0", "a1", "a2", "b0", "b1",
                                            *(f"c{i}" for i in range(300)))]  # fmt: skip
    made = list(store.iter_items(ExportFilter()))
    assert all(len(i["sightings"]) == 1 and len(i["revisions"]) == 1 for i in made)
    assert len(store.search("story", limit=1000).hits) == 305


def test_new_items_beyond_the_reserved_ids_take_more(store: Store) -> None:
    """A poll the batch reserved too few ids for (a feed met again) reserves its own."""
    from storage.pollsql import Writes

    store.sync_feeds([FeedConfig(URLS[0])], T0)
    feed = claim_all(store, T0)[URLS[0]]
    with store.db.write() as conn:
        writes = Writes()
        writes.reserve(conn, 1)
        rows = [item_rows.new_row(feed.id, f"uid-{i}", entry(i), T0, "off") for i in range(3)]
        ids = writes.new_items(conn, rows)
        writes.flush(conn)
        stored = conn.execute(items_t.select().order_by(items_t.c.id)).all()
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [(r.id, r.uid) for r in stored] == [(i, f"uid-{n}") for n, i in enumerate(ids)]
