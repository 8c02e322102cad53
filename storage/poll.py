"""The writes of one poll, in the caller's transaction: lease check, entry matching, feed state.

Matching an entry, in order (issue 5): its own feed's sighting by key; else a sighting of the
same feed with the same link whose key left the document (the feed changed its guid: relink);
else an item with the same canonical URL or the same content fingerprint (another feed, or an
earlier key of this one: fold); else a new item. An item that already answers to another entry
of the *current* document is never a fold target: the feed itself says they are two stories.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, select, update

from storage import captures, items
from storage.dialect import for_update, insert, lock_keys
from storage.errors import LeaseLost, StorageError
from storage.identity import normalize_url
from storage.records import (
    ARTICLE_OFF,
    ARTICLE_OK,
    ARTICLE_PENDING,
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    Entry,
    PollResult,
    PollSummary,
)
from storage.tables import feeds, sightings
from storage.tables import items as items_t

CHUNK = 500  # bound on bound parameters per IN (SQLite allows 32766)


@dataclass
class _Poll:
    """What one apply_poll knows while it places entries."""

    conn: Connection
    result: PollResult
    feed_url: str
    link_keys: bool
    by_key: dict[str, Row[Any]] = field(default_factory=dict)
    owned: set[int] = field(default_factory=set)  # items the current document names
    doc_keys: set[str] = field(default_factory=set)
    new_items: int = 0
    new_sightings: int = 0
    revisions: int = 0
    folded: int = 0
    relinked: int = 0

    def key_of(self, entry: Entry) -> str:
        if self.link_keys and entry.url:
            return "link:" + (normalize_url(entry.url) or entry.url)
        return entry.key


def apply(conn: Connection, result: PollResult) -> PollSummary:
    feed = _locked_feed(conn, result)
    if feed.last_polled == result.polled_at and feed.lease_owner != result.lease_owner:
        return PollSummary()  # this very result was applied already: idempotent replay
    if feed.lease_owner != result.lease_owner:
        holder = feed.lease_owner or "nobody"
        raise LeaseLost(f"poll of {feed.url} by {result.lease_owner}: lease now held by {holder}")
    link_keys = _link_keys(feed.link_keys, result)
    poll = _Poll(conn, result, feed.url, link_keys)
    if result.entries:
        _place_all(poll)
        if not link_keys and poll.relinked * 2 > len(result.entries):
            poll.link_keys = True  # guids change from poll to poll: key by link from now on
    summary = PollSummary(poll.new_items, poll.new_sightings, poll.revisions, poll.folded)
    if result.capture is not None and (poll.new_items or poll.revisions or poll.new_sightings):
        captures.add(conn, result.capture, None, result.feed_id)
    _update_feed(conn, feed, result, summary, poll.link_keys)
    return summary


def _locked_feed(conn: Connection, result: PollResult) -> Row[Any]:
    query = for_update(conn, select(feeds).where(feeds.c.id == result.feed_id))
    feed = conn.execute(query).first()
    if feed is None:
        raise StorageError(f"apply_poll: no feed with id {result.feed_id}")
    return feed


def _link_keys(current: bool, result: PollResult) -> bool:
    """Forced by the service, already known, or guids repeated within this document."""
    if result.link_keys is not None:
        return result.link_keys
    if current:
        return True
    links_by_key: dict[str, set[str | None]] = {}
    for entry in result.entries:
        links_by_key.setdefault(entry.key, set()).add(entry.url)
    return any(len(links) > 1 for links in links_by_key.values())


def _place_all(poll: _Poll) -> None:
    entries = poll.result.entries
    poll.doc_keys = {poll.key_of(e) for e in entries}
    _lock_identities(poll.conn, entries, poll.result.articles)
    for chunk in _chunks(sorted(poll.doc_keys)):
        query = select(sightings).where(
            sightings.c.feed_id == poll.result.feed_id, sightings.c.key.in_(chunk)
        )
        poll.by_key.update({row.key: row for row in poll.conn.execute(query)})
    poll.owned = {row.item_id for row in poll.by_key.values()}
    for entry in entries:
        _place(poll, entry)


def _lock_identities(
    conn: Connection, entries: Iterable[Entry], articles: Iterable[tuple[str, Any]]
) -> None:
    keys = [normalize_url(e.url) for e in entries] + [items.fingerprint(e) for e in entries]
    keys += [normalize_url(a.article.canonical_url) for _, a in articles if a.article]
    lock_keys(conn, [k for k in keys if k])


def _place(poll: _Poll, entry: Entry) -> None:
    key = poll.key_of(entry)
    known = poll.by_key.get(key)
    if known is not None:
        _seen_again(poll, known, entry)
        return
    relink = _same_feed_link(poll, entry)
    if relink is not None:
        poll.relinked += 1
        poll.folded += 1
        poll.conn.execute(update(sightings).where(sightings.c.id == relink.id).values(key=key))
        poll.by_key[key] = relink
        _seen_again(poll, relink, entry)
        return
    target = _fold_target(poll, entry)
    if target is None:
        target = _new_item(poll, key, entry)
    else:
        poll.folded += 1
        poll.new_sightings += 1
        update_values = {"last_seen": poll.result.polled_at, "changed_at": poll.result.polled_at}
        poll.conn.execute(update(items_t).where(items_t.c.id == target).values(**update_values))
    poll.owned.add(target)
    _add_sighting(poll, target, key, entry)
    _maybe_article(poll, target, entry)


def _seen_again(poll: _Poll, sighting: Row[Any], entry: Entry) -> None:
    now = poll.result.polled_at
    poll.conn.execute(
        update(sightings)
        .where(sightings.c.id == sighting.id)
        .values(last_seen=now, guid=entry.guid, link=entry.url)
    )
    row = items.load(poll.conn, sighting.item_id)
    if row.feed_id == poll.result.feed_id:  # only the item's own feed rewrites its content
        poll.revisions += items.refresh(poll.conn, row, entry, now)
    else:
        items.touch(poll.conn, row.id, now)
    _maybe_article(poll, row.id, entry, row.article_status)


def _same_feed_link(poll: _Poll, entry: Entry) -> Row[Any] | None:
    if not entry.url:
        return None
    query = (
        select(sightings)
        .where(sightings.c.feed_id == poll.result.feed_id, sightings.c.link == entry.url)
        .order_by(sightings.c.id)
    )
    for row in poll.conn.execute(query):
        if row.key not in poll.doc_keys:
            return row
    return None


def _fold_target(poll: _Poll, entry: Entry) -> int | None:
    """An existing item that is this entry's story: same canonical URL, else same fingerprint."""
    canon = {normalize_url(entry.url)}
    article = dict(poll.result.articles).get(entry.key)
    if article is not None and article.article is not None:
        canon.add(normalize_url(article.article.canonical_url))
    canon.discard(None)
    fingerprints = {items.fingerprint(entry)}
    for column, values in ((items_t.c.canonical_url, canon), (items_t.c.fingerprint, fingerprints)):
        values.discard(None)
        if not values:
            continue
        query = select(items_t.c.id).where(column.in_(values)).order_by(items_t.c.id)
        for item_id in poll.conn.execute(query).scalars():
            if item_id not in poll.owned:
                return int(item_id)
    return None


def _new_item(poll: _Poll, key: str, entry: Entry) -> int:
    status = ARTICLE_PENDING if poll.result.fetch_articles and entry.url else ARTICLE_OFF
    item_id = items.create(
        poll.conn, poll.result.feed_id, poll.feed_url, key, entry, poll.result.polled_at, status
    )
    poll.new_items += 1
    return item_id


def _add_sighting(poll: _Poll, item_id: int, key: str, entry: Entry) -> None:
    now = poll.result.polled_at
    row = {"item_id": item_id, "feed_id": poll.result.feed_id, "key": key, "guid": entry.guid,
           "link": entry.url, "first_seen": now, "last_seen": now}  # fmt: skip
    conn = poll.conn
    conn.execute(insert(conn, sightings).values(**row).on_conflict_do_nothing())


def _maybe_article(poll: _Poll, item_id: int, entry: Entry, status: str | None = None) -> None:
    result = dict(poll.result.articles).get(entry.key)
    if result is None or status == ARTICLE_OK:
        return
    before = items.load(poll.conn, item_id).article_status if status is None else status
    if before != ARTICLE_OK:
        now = poll.result.polled_at
        poll.revisions += items.attach_article(poll.conn, item_id, poll.result.feed_id, result, now)


def _update_feed(
    conn: Connection, feed: Row[Any], result: PollResult, summary: PollSummary, link_keys: bool
) -> None:
    values: dict[str, Any] = {
        "last_polled": result.polled_at, "last_status": result.status,
        "last_http_status": result.http_status, "last_error": result.error,
        "error_count": result.error_count, "interval": result.interval,
        "next_check": result.next_check, "next_reason": result.next_reason,
        "lease_owner": None, "lease_until": None, "gone": result.gone,
        "redirect_url": result.redirect_url, "redirect_count": result.redirect_count,
        "link_keys": link_keys, "last_new_items": summary.new_items,
    }  # fmt: skip
    if result.status == STATUS_OK:
        values |= {"etag": result.etag, "last_modified": result.last_modified,
                   "last_document_at": result.polled_at}  # fmt: skip
    elif result.status == STATUS_NOT_MODIFIED:
        values |= {k: v for k, v in (("etag", result.etag), ("last_modified",
                   result.last_modified)) if v is not None}  # fmt: skip
    if result.unconditional:
        values["last_unconditional"] = result.polled_at
    if result.title and not feed.title:
        values["title"] = result.title
    if result.url and result.url != feed.url and not _url_taken(conn, result.url):
        values["url"] = result.url
    conn.execute(update(feeds).where(feeds.c.id == feed.id).values(**values))


def _url_taken(conn: Connection, url: str) -> bool:
    return conn.execute(select(feeds.c.id).where(feeds.c.url == url)).first() is not None


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
