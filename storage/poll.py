"""The writes of polls, in the caller's transaction: lease check, entry matching, feed state.

Matching an entry, in order (issue 5): its own feed's sighting by key; else a sighting of the
same feed with the same link whose key left the document (the feed changed its guid: relink);
else an item with the same canonical URL or the same content fingerprint (another feed, or an
earlier key of this one: fold); else a new item. An item that already answers to another entry
of the *current* document is never a fold target: the feed itself says they are two stories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, select, update

from storage import captures, items
from storage.dialect import for_update, lock_keys
from storage.errors import LeaseLost, StorageError
from storage.feeds import item_rate
from storage.identity import item_uid, normalize_url
from storage.records import (
    ARTICLE_OFF,
    ARTICLE_OK,
    ARTICLE_PENDING,
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    ArticleResult,
    Entry,
    PollResult,
    PollSummary,
)
from storage.tables import feeds, polls, sightings
from storage.tables import items as items_t

CHUNK = 500  # bound on bound parameters per IN (SQLite allows 32766)
RATE_WINDOW_DAYS = 14.0  # the publishing rate behind the adaptive interval


@dataclass
class _Poll:
    """What one apply_poll knows while it places entries; writes are batched where they can be."""

    conn: Connection
    result: PollResult
    feed_url: str
    link_keys: bool
    doc_keys: set[str] = field(default_factory=set)
    by_key: dict[str, Row[Any]] = field(default_factory=dict)  # this feed's sightings
    item_rows: dict[int, Row[Any]] = field(default_factory=dict)
    by_link: dict[str, list[Row[Any]]] = field(default_factory=dict)
    by_identity: dict[str, list[int]] = field(default_factory=dict)  # canonical URL, fingerprint
    by_uid: dict[str, int] = field(default_factory=dict)
    identities: dict[str, list[str]] = field(default_factory=dict)  # entry key -> identities
    owned: set[int] = field(default_factory=set)  # items the current document names
    articles: dict[str, ArticleResult] = field(init=False)
    seen_sightings: set[int] = field(default_factory=set)
    seen_items: set[int] = field(default_factory=set)
    folded_items: set[int] = field(default_factory=set)
    relinked_ids: set[int] = field(default_factory=set)
    new_rows: dict[str, tuple[Entry, dict[str, Any]]] = field(default_factory=dict)
    sighting_rows: list[dict[str, Any]] = field(default_factory=list)
    new_sightings: int = 0
    revisions: int = 0
    folded: int = 0
    relinked: int = 0

    def __post_init__(self) -> None:
        self.articles = dict(self.result.articles)

    def key_of(self, entry: Entry) -> str:
        if self.link_keys and entry.url:
            return "link:" + (normalize_url(entry.url) or entry.url)
        return entry.key


def apply_batch(conn: Connection, results: Sequence[PollResult]) -> list[PollSummary | LeaseLost]:
    """Apply polls of several feeds in one transaction; a lost lease only loses its own slot.

    Locks first, all of them, in one global order (feed rows by id, then advisory keys sorted),
    so that concurrent batches on PostgreSQL never wait on each other in a cycle. Any other
    error propagates: the caller rolls the batch back and retries its results one by one.
    """
    locked = _lock_feeds(conn, {r.feed_id for r in results})
    idents = [identities(r) for r in results]
    lock_keys(conn, [k for found in idents for keys in found.values() for k in keys])
    out: list[PollSummary | LeaseLost] = []
    for result, found in zip(results, idents, strict=True):
        try:  # a feed listed twice is read again, so its second result sees the first
            out.append(apply(conn, result, locked.pop(result.feed_id, None), found))
        except LeaseLost as exc:  # raised before the result wrote anything
            out.append(exc)
    return out


def _lock_feeds(conn: Connection, ids: set[int]) -> dict[int, Row[Any]]:
    query = for_update(conn, select(feeds).order_by(feeds.c.id))
    return {row.id: row for row in _select_in(conn, query, feeds.c.id, ids)}


def apply(
    conn: Connection,
    result: PollResult,
    feed: Row[Any] | None = None,
    locked_identities: dict[str, list[str]] | None = None,
) -> PollSummary:
    """Apply one poll. A batch passes the feed row it locked and the identities whose advisory
    keys it took (``identities(result)``)."""
    feed = feed if feed is not None else _locked_feed(conn, result)
    if feed.last_polled == result.polled_at and feed.lease_owner != result.lease_owner:
        return PollSummary()  # this very result was applied already: idempotent replay
    if feed.lease_owner != result.lease_owner:
        holder = feed.lease_owner or "nobody"
        raise LeaseLost(f"poll of {feed.url} by {result.lease_owner}: lease now held by {holder}")
    link_keys = _link_keys(feed.link_keys, result)
    poll = _Poll(conn, result, feed.url, link_keys)
    if locked_identities is None:
        poll.identities = identities(result)
        lock_keys(conn, [k for keys in poll.identities.values() for k in keys])
    else:
        poll.identities = locked_identities
    if result.entries:
        _place_all(poll)
        if not link_keys and poll.relinked * 2 > len(result.entries):
            poll.link_keys = True  # guids change from poll to poll: key by link from now on
    new_items = len(poll.new_rows)
    summary = PollSummary(new_items, poll.new_sightings, poll.revisions, poll.folded)
    if result.capture is not None and (new_items or poll.revisions or poll.new_sightings):
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
    _preload(poll)
    for entry in entries:
        _place(poll, entry)
    _create_items(poll)
    _flush(poll)


def identities(result: PollResult) -> dict[str, list[str]]:
    """Entry key -> the canonical URLs and fingerprint the entry could be folded by; their
    advisory keys serialize transactions that could create the same story (PostgreSQL)."""
    articles = dict(result.articles)
    out: dict[str, list[str]] = {}
    for entry in result.entries:
        if entry.key in out:
            continue  # keyed by the entry's own key, the first entry with it decides
        found = [normalize_url(entry.url), items.fingerprint(entry)]
        article = articles.get(entry.key)
        if article is not None and article.article is not None:
            found.append(normalize_url(article.article.canonical_url))
        out[entry.key] = [k for k in found if k]
    return out


def _preload(poll: _Poll) -> None:
    """Read in a few statements what placing the document's entries needs to know."""
    feed_id, conn = poll.result.feed_id, poll.conn
    for row in _select_in(conn, select(sightings).where(sightings.c.feed_id == feed_id),
                          sightings.c.key, poll.doc_keys):  # fmt: skip
        poll.by_key[row.key] = row
    poll.owned = {row.item_id for row in poll.by_key.values()}
    for row in _select_in(conn, select(items_t), items_t.c.id, poll.owned):
        poll.item_rows[row.id] = row
    unknown = [e for e in poll.result.entries if poll.key_of(e) not in poll.by_key]
    if not unknown:
        return
    links = {e.url for e in unknown if e.url}
    query = select(sightings).where(sightings.c.feed_id == feed_id).order_by(sightings.c.id)
    for row in _select_in(conn, query, sightings.c.link, links):
        poll.by_link.setdefault(row.link, []).append(row)
    idents = {k for e in unknown for k in poll.identities[e.key]}
    cols = select(items_t.c.id, items_t.c.canonical_url, items_t.c.fingerprint)
    for column in (items_t.c.canonical_url, items_t.c.fingerprint):
        for row in _select_in(conn, cols.order_by(items_t.c.id), column, idents):
            for ident in {row.canonical_url, row.fingerprint} & idents:
                poll.by_identity.setdefault(ident, []).append(row.id)
    uids = {item_uid(poll.feed_url, poll.key_of(e)) for e in unknown}
    for row in _select_in(conn, select(items_t.c.id, items_t.c.uid), items_t.c.uid, uids):
        poll.by_uid[row.uid] = row.id


def _select_in(conn: Connection, query: Any, column: Any, values: Iterable[Any]) -> list[Any]:
    ordered = sorted(values)
    rows: list[Any] = []
    for start in range(0, len(ordered), CHUNK):
        rows += conn.execute(query.where(column.in_(ordered[start : start + CHUNK]))).all()
    return rows


def _place(poll: _Poll, entry: Entry) -> None:
    key = poll.key_of(entry)
    known = poll.by_key.get(key)
    if known is not None:
        _seen_again(poll, known, entry)
        return
    if key in poll.new_rows:
        return  # the same entry twice in one document
    relink = _same_feed_link(poll, entry)
    if relink is not None:
        poll.relinked += 1
        poll.folded += 1
        poll.relinked_ids.add(relink.id)
        poll.conn.execute(update(sightings).where(sightings.c.id == relink.id).values(key=key))
        poll.by_key[key] = relink
        _seen_again(poll, relink, entry)
        return
    target = _fold_target(poll, entry)
    if target is None:
        status = ARTICLE_PENDING if poll.result.fetch_articles and entry.url else ARTICLE_OFF
        row = items.new_row(poll.result.feed_id, poll.feed_url, key, entry,
                            poll.result.polled_at, status)  # fmt: skip
        poll.new_rows[key] = (entry, row)
        return
    poll.folded += 1
    poll.new_sightings += 1
    poll.folded_items.add(target)
    poll.owned.add(target)
    poll.sighting_rows.append(_sighting_row(poll, target, key, entry))
    _maybe_article(poll, target, entry, None)


def _seen_again(poll: _Poll, sighting: Row[Any], entry: Entry) -> None:
    poll.seen_sightings.add(sighting.id)
    if (sighting.guid, sighting.link) != (entry.guid, entry.url):
        poll.conn.execute(
            update(sightings)
            .where(sightings.c.id == sighting.id)
            .values(guid=entry.guid, link=entry.url)
        )
    row = poll.item_rows.get(sighting.item_id) or items.load(poll.conn, sighting.item_id)
    poll.seen_items.add(row.id)
    if row.feed_id == poll.result.feed_id:  # only the item's own feed rewrites its content
        poll.revisions += items.refresh(poll.conn, row, entry, poll.result.polled_at)
    _maybe_article(poll, row.id, entry, row.article_status)


def _same_feed_link(poll: _Poll, entry: Entry) -> Row[Any] | None:
    for row in poll.by_link.get(entry.url or "", []):
        if row.key not in poll.doc_keys and row.id not in poll.relinked_ids:
            return row
    return None


def _fold_target(poll: _Poll, entry: Entry) -> int | None:
    """An existing item that is this entry's story: same uid, canonical URL or fingerprint."""
    uid_match = poll.by_uid.get(item_uid(poll.feed_url, poll.key_of(entry)))
    candidates = [] if uid_match is None else [uid_match]
    for ident in poll.identities[entry.key]:
        candidates += poll.by_identity.get(ident, [])
    return next((c for c in candidates if c not in poll.owned), None)


def _create_items(poll: _Poll) -> None:
    ids = items.create_many(poll.conn, [row for _, row in poll.new_rows.values()])
    for item_id, (key, (entry, _)) in zip(ids, poll.new_rows.items(), strict=True):
        poll.owned.add(item_id)
        poll.sighting_rows.append(_sighting_row(poll, item_id, key, entry))
        _maybe_article(poll, item_id, entry, None)


def _sighting_row(poll: _Poll, item_id: int, key: str, entry: Entry) -> dict[str, Any]:
    now = poll.result.polled_at
    return {"item_id": item_id, "feed_id": poll.result.feed_id, "key": key, "guid": entry.guid,
            "link": entry.url, "first_seen": now, "last_seen": now}  # fmt: skip


def _flush(poll: _Poll) -> None:
    """The batched writes: new sightings, and last_seen / changed_at moves."""
    conn, now = poll.conn, poll.result.polled_at
    if poll.sighting_rows:
        conn.execute(sightings.insert(), poll.sighting_rows)
    for ids, table, values in (
        (poll.seen_sightings, sightings, {"last_seen": now}),
        (poll.seen_items | poll.folded_items, items_t, {"last_seen": now}),
        (poll.folded_items, items_t, {"changed_at": now}),  # a new sighting changes the export
    ):
        ordered = sorted(ids)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            conn.execute(update(table).where(table.c.id.in_(chunk)).values(**values))


def _maybe_article(poll: _Poll, item_id: int, entry: Entry, status: str | None) -> None:
    result = poll.articles.get(entry.key)
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
    # Every poll, 304s included: a feed that goes quiet must see its rate fall.
    values["items_per_day"] = item_rate(conn, feed.id, result.polled_at, RATE_WINDOW_DAYS)
    conn.execute(update(feeds).where(feeds.c.id == feed.id).values(**values))
    _log_poll(conn, feed.id, result, summary)


def _log_poll(conn: Connection, feed_id: int, result: PollResult, summary: PollSummary) -> None:
    """Append to the feed's poll history (housekeeping prunes it: maintenance.prune_polls)."""
    conn.execute(polls.insert().values(
        feed_id=feed_id, polled_at=result.polled_at, status=result.status,
        http_status=result.http_status, new_items=summary.new_items, error=result.error,
        next_check=result.next_check, next_reason=result.next_reason,
    ))  # fmt: skip


def _url_taken(conn: Connection, url: str) -> bool:
    return conn.execute(select(feeds.c.id).where(feeds.c.url == url)).first() is not None
