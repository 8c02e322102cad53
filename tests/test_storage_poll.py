"""apply_poll: one transaction per poll, idempotent; one story = one item across feeds; broken
guids neither collapse nor duplicate; changed content makes capped revisions; captures dedup."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from storage import pollsql
from storage.items import ENTRY_COLUMNS, changes, entry_values
from storage.records import (
    STATUS_ERROR,
    STATUS_NOT_MODIFIED,
    Article,
    ArticleResult,
    Capture,
    Enclosure,
    ExportFilter,
    FeedConfig,
    PollSummary,
)
from storage.revisions import FREE_REVISIONS, MAX_REVISIONS, MIN_GAP
from storage.store import Store
from storage.tables import items as items_t
from tests.dbfixtures import T0, claim_one, entry, poll, poll_result

A, B, C = (f"https://{n}.example/feed" for n in "abc")
FEED_NUMBERS = itertools.count()


def items(store: Store) -> list[dict[str, Any]]:
    return list(store.iter_items(ExportFilter()))


def snapshot(store: Store) -> list[dict[str, Any]]:
    """The archive's content, without the times that a later poll legitimately moves."""
    out = []
    for item in items(store):
        item = {k: v for k, v in item.items() if k not in ("last_seen", "changed_at")}
        item["sightings"] = [{k: v for k, v in s.items() if k != "last_seen"}
                             for s in item["sightings"]]  # fmt: skip
        out.append(item)
    return out


def capture(body: bytes, kind: str = "feed", url: str = A) -> Capture:
    return Capture(kind, url, url, 200, (("content-type", "application/rss+xml"),), T0, body)


def test_new_entries_become_items_with_a_sighting_and_a_revision(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    summary = poll(store, A, T0, [entry(1), entry(2)], etag='"e1"', last_modified="Mon")
    assert (summary.new_items, summary.revisions) == (2, 0)
    got = items(store)
    assert [i["title"] for i in got] == ["Story 1", "Story 2"]
    assert all(len(i["sightings"]) == 1 and len(i["revisions"]) == 1 for i in got)
    feed = store.get_feed(A)
    assert feed is not None and (feed.etag, feed.item_count, feed.last_new_items) == ('"e1"', 2, 2)


def test_applying_the_same_result_twice_is_a_no_op(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    result = poll_result(claim_one(store, A, T0), T0, [entry(1)])
    assert store.apply_poll(result).new_items == 1
    before = items(store)
    assert store.apply_poll(result).new_items == 0
    assert items(store) == before


DOCS = st.lists(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2)), max_size=6).map(
        lambda pairs: sorted(dict(pairs).items())  # one version of each entry per document
    ),
    min_size=1, max_size=4,
)  # fmt: skip


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=DOCS)
def test_applying_a_poll_twice_equals_applying_it_once(
    store: Store, docs: list[list[tuple[int, int]]]
) -> None:
    no = next(FEED_NUMBERS)  # one fresh feed, with its own stories, per example
    url = f"https://h{no}.example/feed"
    store.sync_feeds([FeedConfig(url)], T0)
    t = T0
    for doc in docs:
        t += timedelta(hours=2)
        entries = [entry(f"{no}-{n}", title=f"Story {n} v{v}") for n, v in doc]
        result = poll_result(claim_one(store, url, t), t, entries)
        store.apply_poll(result)
        once = items(store)
        assert store.apply_poll(result) == PollSummary()
        assert items(store) == once
    before = snapshot(store)
    t += timedelta(hours=2)
    again = poll(store, url, t, entries)
    assert (again.new_items, again.revisions, again.new_sightings) == (0, 0, 0)
    assert snapshot(store) == before


def test_a_not_modified_poll_keeps_validators_and_items(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1)], etag='"e1"')
    t1 = T0 + timedelta(hours=1)
    poll(store, A, t1, [], status=STATUS_NOT_MODIFIED, http_status=304, etag=None)
    feed = store.get_feed(A)
    assert feed is not None and (feed.etag, feed.last_status) == ('"e1"', "not_modified")
    t2 = t1 + timedelta(hours=1)
    poll(store, A, t2, [], status=STATUS_ERROR, error="fetch: boom for " + A, error_count=1)
    feed = store.get_feed(A)
    assert feed is not None and feed.etag == '"e1"' and feed.last_error == "fetch: boom for " + A
    assert len(items(store)) == 1


def test_one_story_in_three_feeds_is_one_item_with_three_sightings(store: Store) -> None:
    store.sync_feeds([FeedConfig(A), FeedConfig(B), FeedConfig(C)], T0)
    poll(store, A, T0, [entry(1, url="https://news.example/story/1")])
    # B links with tracking parameters and another scheme; C is an exact copy at another URL
    b = entry("b1", url="http://NEWS.example:80/story/1?utm_source=rss&fbclid=x#top")
    c = entry("c1", title="Story 1", summary=entry(1).summary, url="https://mirror.example/s1")
    sb = poll(store, B, T0, [b])
    sc = poll(store, C, T0, [c])
    assert (sb.new_items, sb.new_sightings, sc.new_items, sc.new_sightings) == (0, 1, 0, 1)
    [item] = items(store)
    assert item["feed_url"] == A
    assert sorted(s["feed_url"] for s in item["sightings"]) == [A, B, C]
    assert store.stats()["duplicates_folded"] == 2


def test_an_entry_seen_again_moves_last_seen_without_rewriting_its_item(store: Store) -> None:
    """The item's last_seen is the latest of its sightings': a poll that finds a known entry
    unchanged updates the sighting only, never the item's row (on SQLite that rewrote the row,
    its article included, for every known entry of every feed that changed)."""
    store.sync_feeds([FeedConfig(A), FeedConfig(B)], T0)
    poll(store, A, T0, [entry(1), entry(2)])
    poll(store, B, T0, [entry("b1", title="Story 1", summary=entry(1).summary,
                              url="https://mirror.example/s1")])  # fmt: skip
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    event.listen(store.db.engine, "before_cursor_execute", record)
    try:
        poll(store, A, T0 + timedelta(hours=1), [entry(1), entry(2)])
        poll(store, B, T0 + timedelta(hours=2), [entry("b1", title="Story 1",
             summary=entry(1).summary, url="https://mirror.example/s1")])  # fmt: skip
    finally:
        event.remove(store.db.engine, "before_cursor_execute", record)
    assert not [s for s in statements if s.startswith("update items")]
    assert any(s.startswith("update sightings") for s in statements)
    by_title = {i["title"]: i for i in items(store)}
    one, two = by_title["Story 1"], by_title["Story 2"]
    assert sorted(s["last_seen"] for s in one["sightings"]) == [
        (T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=2)).isoformat()]
    assert one["last_seen"] == (T0 + timedelta(hours=2)).isoformat()  # the latest feed's
    assert two["last_seen"] == (T0 + timedelta(hours=1)).isoformat()
    assert one["changed_at"] == two["changed_at"] == T0.isoformat()  # not a change to export


def test_a_known_entry_is_compared_column_by_column_with_its_stored_item(store: Store) -> None:
    """``items.changes`` against the row a poll reads: nothing for the same entry (also with a
    NUL the row dropped, or its dates in another offset but for the offset's own column), and
    exactly the column that differs otherwise."""
    tz = timezone(timedelta(hours=5))
    stored = entry(1, content_html="<p>Body</p>", authors=("Ann", "Bo"), published=T0,
                   updated=T0 + timedelta(hours=1), enclosures=(Enclosure("https://e.example/a.mp3",
                   "audio/mpeg", 10, 60),))  # fmt: skip
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [stored])
    with store.db.read() as conn:
        [row] = pollsql.items_by_id(conn, {int(conn.execute(select(items_t.c.id)).scalar_one())})
    assert tuple(entry_values(stored)) == ENTRY_COLUMNS  # the order the quick test relies on
    assert changes(row, stored) == {}
    assert changes(row, replace(stored, title="Story\x00 1")) == {}
    moved = replace(stored, published=T0.astimezone(tz))
    assert changes(row, moved) == {"published_offset": 300}  # the same instant
    variants = {
        "guid": replace(stored, guid="other"), "url": replace(stored, url="https://x.example/"),
        "title": replace(stored, title="Other"), "summary": replace(stored, summary="Other."),
        "content_html": replace(stored, content_html="<p>Other</p>"),
        "authors": replace(stored, authors=("Bo", "Ann")),
        "published": replace(stored, published=T0 + timedelta(seconds=1)),
        "updated": replace(stored, updated=T0 + timedelta(hours=2)),
        "enclosures": replace(stored, enclosures=()),
    }  # fmt: skip
    for column, variant in variants.items():
        assert list(changes(row, variant)) == [column], column


def test_distinct_entries_sharing_a_link_in_one_document_stay_distinct(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    home = "https://site.example/"
    doc = [entry(i, url=home) for i in range(3)]
    poll(store, A, T0, doc)
    poll(store, A, T0 + timedelta(hours=1), [entry(9, url=home), *doc])
    assert len(items(store)) == 4


def test_the_same_guid_on_every_entry_keeps_them_apart_and_only_them(store: Store) -> None:
    # issue 10: a repeated guid affects the entries that repeat it, not the whole feed (which
    # used to be keyed by link from then on: a podcast whose episodes all link its home page
    # then folded into a handful of items)
    store.sync_feeds([FeedConfig(A)], T0)
    doc = [entry(i, key="same", guid="same") for i in range(4)] + [entry(7)]
    assert poll(store, A, T0, doc).new_items == 5
    assert poll(store, A, T0 + timedelta(hours=1), doc).new_items == 0
    assert len(items(store)) == 5
    feed = store.get_feed(A)
    assert feed is not None and not feed.link_keys
    keys = sorted(i["sightings"][0]["key"] for i in items(store))
    assert keys[0] == "guid:guid-7" and keys[1] == "guid:same"


def test_guids_changing_every_poll_fall_back_to_links(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    for n in range(4):
        doc = [entry(i, key=f"poll{n}-{i}", guid=f"poll{n}-{i}") for i in range(5)]
        summary = poll(store, A, T0 + timedelta(hours=n), doc)
        assert summary.new_items == (5 if n == 0 else 0)
    assert len(items(store)) == 5
    assert all(len(i["sightings"]) == 1 for i in items(store))
    feed = store.get_feed(A)
    assert feed is not None and feed.link_keys
    assert store.known_entries(feed.id, [entry(1, key="poll9-1")]) == {"poll9-1"}


def test_the_service_can_force_link_keys(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1)], link_keys=True)
    feed = store.get_feed(A)
    assert feed is not None and feed.link_keys
    assert items(store)[0]["sightings"][0]["key"] == "link:https://news.example/story/1"


def test_changed_content_makes_revisions_and_keeps_the_old(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1)])
    poll(store, A, T0 + timedelta(hours=1), [entry(1, title="Story 1, updated")])
    [item] = items(store)
    assert [r["title"] for r in item["revisions"]] == ["Story 1", "Story 1, updated"]
    assert item["title"] == "Story 1, updated"


def test_a_counter_in_the_text_cannot_fill_the_archive(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    t = T0
    for n in range(200):  # every five minutes for 16 hours, a new counter value
        t += timedelta(minutes=5)
        poll(store, A, t, [entry(1, title=f"Live: {n} readers")], next_check=t)
    [item] = items(store)
    seqs = [r["seq"] for r in item["revisions"]]
    assert FREE_REVISIONS < len(seqs) <= MAX_REVISIONS
    assert seqs == list(range(1, len(seqs) + 1))
    assert item["title"] == "Live: 199 readers"  # the item itself always has the latest
    late = [
        datetime.fromisoformat(r["recorded_at"]) for r in item["revisions"][FREE_REVISIONS - 1 :]
    ]
    assert all(b - a >= MIN_GAP for a, b in itertools.pairwise(late))


def test_article_arrival_completes_the_first_revision_then_changes_add_one(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1)])
    [pending] = store.pending_articles(T0, 10)
    art = Article(title="Story 1", text="Para one.\n\nPara two.", html="<p>Para one.</p>",
                  canonical_url="https://news.example/story/1", extractor="test/1",
                  sources=(("title", "meta"),))  # fmt: skip
    page = capture(b"<html>page</html>", "page", pending.url)
    store.apply_article(pending.item_id, ArticleResult(article=art, capture=page), T0)
    [item] = items(store)
    assert len(item["revisions"]) == 1 and item["revisions"][0]["text"] == art.text
    assert item["article"]["sources"] == {"title": "meta"} and item["article_status"] == "ok"
    assert item["provenance"]["extractor"] == "test/1"
    new = ArticleResult(article=Article(title="Story 1", text="Para one.\n\nPara 2!", html=""))
    store.apply_article(pending.item_id, new, T0 + timedelta(hours=1))
    [item] = items(store)
    assert len(item["revisions"]) == 2
    assert (
        "-Para two." in item["revisions"][1]["diff"] and "+Para 2!" in item["revisions"][1]["diff"]
    )
    assert store.pending_articles(T0 + timedelta(days=1), 10) == []


def test_a_changed_entry_keeps_its_article_in_the_revision_and_the_index(store: Store) -> None:
    """A poll reads a feed's known items without their articles (tens of kilobytes each, for
    every known entry of a feed that changed); the one whose entry changed reads its own: the
    new revision carries the article's text, and the item stays searchable by it."""
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1), entry(2)])
    [pending] = [p for p in store.pending_articles(T0, 10) if p.url.endswith("/story/1")]
    art = Article(title="Story 1", text="Only the article says quetzalcoatl.", html="<p>x</p>")
    store.apply_article(pending.item_id, ArticleResult(article=art), T0)
    later = T0 + timedelta(hours=1)
    poll(store, A, later, [entry(1, summary="A new summary. " * 5), entry(2)])
    [item] = [i for i in items(store) if i["title"] == "Story 1"]
    assert [r["text"] for r in item["revisions"]] == [art.text, art.text]
    assert item["revisions"][1]["summary"].startswith("A new summary.")
    assert [h.item_id for h in store.search("quetzalcoatl").hits] == [pending.item_id]


def test_a_failed_article_keeps_the_item_and_retries_later(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(1)])
    [claimed] = store.claim_articles(T0, 10, "w1", 60)
    assert store.claim_articles(T0, 10, "w2", 60) == []
    retry = T0 + timedelta(hours=2)
    store.apply_article(
        claimed.item_id, ArticleResult(error="fetch: 503 for x", next_try=retry), T0
    )
    [item] = items(store)
    assert (item["article_status"], item["article_error"], item["title"]) == (
        "failed",
        "fetch: 503 for x",
        "Story 1",
    )
    assert store.pending_articles(retry - timedelta(seconds=1), 10) == []
    [again] = store.pending_articles(retry, 10)
    assert again.attempts == 1


def test_captures_are_deduplicated_by_content(store: Store) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    body = b"<rss>" + b"x" * 5000 + b"</rss>"
    poll(store, A, T0, [entry(1)], capture=capture(body))
    t1 = T0 + timedelta(hours=1)
    cap2 = Capture("feed", A, A, 200, (), t1, body)
    poll(store, A, t1, [entry(1), entry(2)], capture=cap2)
    t2 = t1 + timedelta(hours=1)
    poll(store, A, t2, [entry(1), entry(2)], capture=Capture("feed", A, A, 200, (), t2, b"zz"))
    stats = store.stats()
    assert (stats["captures"], stats["blobs"]) == (2, 1)  # nothing new at t2: no capture
    assert stats["captures_raw_bytes"] == 2 * len(body)
    assert stats["blobs_stored_bytes"] < len(body) / 10
