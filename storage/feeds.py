"""The feeds table: config sync, the schedule, leases, a poll's feed state, listings. No item
writes here.

A lease lets several service instances share one database: ``claim_due`` marks a due feed as
taken by ``owner`` until ``lease_until``. A crashed instance's feeds come back at the next claim
when its death can be told (``storage.holders``), else once the lease expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, or_, select, update

from storage import holders
from storage.dialect import for_update_skip_locked, insert, lock_feed_sync
from storage.errors import RemovalRefused
from storage.feedrows import read_states
from storage.records import (
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    FeedConfig,
    FeedState,
    PollResult,
    PollSummary,
)
from storage.redact import strip_credentials
from storage.tables import feeds, polls, sightings

MIN_RATE_HISTORY = timedelta(days=1)  # a rate over a shorter span is noise
RATE_WINDOW_DAYS = 14.0  # the publishing rate behind the adaptive interval
RATE_REFRESH = timedelta(hours=1)  # a poll that brings nothing recounts it once per such slot

_FIRST_SEEN = select(func.min(sightings.c.first_seen)).where(
    sightings.c.feed_id == bindparam("feed_id")
)
_SINCE_FIRST = (
    select(func.count())
    .where(sightings.c.feed_id == bindparam("feed_id"))
    .where(sightings.c.first_seen > _FIRST_SEEN.scalar_subquery())
    .where(sightings.c.first_seen >= bindparam("since"), sightings.c.first_seen <= bindparam("now"))
)
RATE = select(
    _FIRST_SEEN.scalar_subquery().label("start"), _SINCE_FIRST.scalar_subquery().label("n")
)


def config_values(cfg: FeedConfig) -> dict[str, Any]:
    return {
        "title": cfg.title,
        "tags": list(cfg.tags),
        "base_interval": cfg.interval,
        "min_interval": cfg.min_interval,
        "max_interval": cfg.max_interval,
        "fetch_articles": cfg.fetch_articles,
        "retention_days": cfg.retention_days,
        "retention_count": cfg.retention_count,
        "active": True,
    }


def new_feed_values(url: str, now: datetime, reason: str) -> dict[str, Any]:
    """A feed row's state columns at creation: due at ``now``, nothing known yet."""
    return {
        "url": url, "tags": [], "base_interval": 900.0, "min_interval": 300.0,
        "max_interval": 86400.0, "fetch_articles": True, "active": True, "interval": 900.0,
        "next_check": now, "next_reason": reason, "error_count": 0, "last_new_items": 0,
        "gone": False, "redirect_count": 0, "link_keys": False, "created_at": now,
    }  # fmt: skip


# An archive of this many active feeds or fewer may lose them all to a new configuration
# without ``allow_removal`` (someone trying things out); a larger one at most half at once.
SMALL_ARCHIVE = 2


def removal_refused(retiring: int, active: int) -> bool:
    """Whether retiring ``retiring`` of ``active`` feeds needs ``allow_removal``."""
    return active > SMALL_ARCHIVE and retiring * 2 > active


def sync(conn: Connection, configs: Sequence[FeedConfig], now: datetime,
         allow_removal: bool = True) -> None:  # fmt: skip
    """Upsert the configured feeds; the others stay (with their items) but go inactive. A
    configuration that would deactivate most active feeds raises ``RemovalRefused`` (the
    transaction then writes nothing) unless ``allow_removal``.

    A feed is found by the URL the configuration gave it, which a permanent redirect does not
    change, or by its current URL (a user who updated the file after the move). Concurrent
    syncs take turns (``lock_feed_sync``), and a feed another writer (an import) added
    meanwhile is taken as found, so that two instances starting together never collide.
    """
    lock_feed_sync(conn)
    forget_credentials(conn)
    rows = conn.execute(select(feeds.c.id, feeds.c.url, *_SYNCED)).all()
    by_config = {r.config_url: r.id for r in rows if r.config_url}
    by_url = {r.url: r.id for r in rows}
    # Rows as they stand, to skip the updates that would change nothing (a thousand feeds:
    # 0.3 s at every start); a row this sync changed is compared no more.
    holders_of = _holders_by_config(rows)
    columns = rows[0]._fields if rows else ()
    current = {r.id: dict(zip(columns, r, strict=True)) for r in rows}  # 3× _mapping's speed
    kept: set[int] = set()
    for cfg in {cfg.url: cfg for cfg in configs}.values():
        values = config_values(cfg) | {"config_url": cfg.url}
        if cfg.title is None:  # the title the feed gave stays (a poll fills it in)
            del values["title"]
        fid = by_config.get(cfg.url, by_url.get(cfg.url))
        if fid is not None and fid not in kept:
            others = holders_of.get(cfg.url, set()) - {fid}
            if others:
                conn.execute(update(feeds).where(feeds.c.config_url == cfg.url, feeds.c.id != fid)
                             .values(config_url=None))
                for other in others:
                    current.pop(other, None)
            row = current.get(fid)
            if row is None or any(row[k] != v for k, v in values.items()):
                conn.execute(update(feeds).where(feeds.c.id == fid).values(**values))
                current.pop(fid, None)
        else:
            fid = _insert_feed(conn, cfg, values, now)
        kept.add(fid)
    retired = [r.id for r in rows if r.id not in kept]
    retiring = [r.url for r in rows if r.id not in kept and r.active]
    active = sum(1 for r in rows if r.active)
    if not allow_removal and removal_refused(len(retiring), active):
        raise RemovalRefused(sorted(retiring), active)
    if retired:
        conn.execute(update(feeds).where(feeds.c.id.in_(retired)).values(active=False))


# The columns the configuration sets (``config_values``, and ``config_url``).
_SYNCED = (feeds.c.config_url, feeds.c.title, feeds.c.tags, feeds.c.base_interval,
           feeds.c.min_interval, feeds.c.max_interval, feeds.c.fetch_articles,
           feeds.c.retention_days, feeds.c.retention_count, feeds.c.active)  # fmt: skip


def _holders_by_config(rows: Sequence[Any]) -> dict[str, set[int]]:
    """The rows (``id``, ``config_url``) that hold each configured URL (normally one)."""
    holders_of: dict[str, set[int]] = {}
    for r in rows:
        if r.config_url:
            holders_of.setdefault(r.config_url, set()).add(r.id)
    return holders_of


def _insert_feed(conn: Connection, cfg: FeedConfig, values: dict[str, Any], now: datetime) -> int:
    """A new feed row; if its URL appeared meanwhile (an import's insert), that row is updated."""
    row = new_feed_values(cfg.url, now, "new feed") | values | {"interval": cfg.interval}
    stmt = insert(conn, feeds).values(**row).on_conflict_do_nothing(index_elements=["url"])
    fid = conn.execute(stmt.returning(feeds.c.id)).scalar()
    if fid is None:
        fid = conn.execute(select(feeds.c.id).where(feeds.c.url == cfg.url)).scalar_one()
        conn.execute(update(feeds).where(feeds.c.id == fid).values(**values))
    return int(fid)


def forget_credentials(conn: Connection) -> None:
    """An archive from before issue 11 may hold ``user:password@`` in a feed's URLs: take them
    off (they live in the configuration only), unless the bare URL is another feed's already."""
    cols = (feeds.c.id, feeds.c.url, feeds.c.config_url, feeds.c.redirect_url)
    rows = conn.execute(select(*cols).where(or_(*(c.contains("@") for c in cols[1:])))).all()
    for row in rows:
        values = {name: strip_credentials(value) for name, value in row._mapping.items()
                  if name != "id" and value and strip_credentials(value) != value}
        for name in ("url", "config_url"):
            if name in values and _taken(conn, name, values[name]):
                del values[name]
        if values:
            conn.execute(update(feeds).where(feeds.c.id == row.id).values(**values))


def _taken(conn: Connection, column: str, value: str) -> bool:
    return conn.execute(select(feeds.c.id).where(feeds.c[column] == value)).first() is not None


def claim(
    conn: Connection, now: datetime, limit: int, owner: str, lease_seconds: float,
    due_by: datetime,
) -> tuple[list[FeedState], int]:  # fmt: skip
    """Lease up to ``limit`` feeds due by ``due_by`` with a free or expired lease, oldest first;
    also how many of them another holder's expired lease still named (taken over)."""
    due = (
        select(feeds.c.id, feeds.c.lease_owner)
        .where(
            feeds.c.active,
            ~feeds.c.gone,
            feeds.c.next_check <= due_by,
            or_(feeds.c.lease_until.is_(None), feeds.c.lease_until <= now),
        )
        .order_by(feeds.c.next_check, feeds.c.id)
        .limit(limit)
    )
    rows = conn.execute(for_update_skip_locked(conn, due)).all()
    ids = [r.id for r in rows]
    if not ids:
        return [], 0
    taken = sum(1 for r in rows if r.lease_owner is not None and r.lease_owner != owner)
    until = now + timedelta(seconds=lease_seconds)
    conn.execute(
        update(feeds).where(feeds.c.id.in_(ids)).values(lease_owner=owner, lease_until=until)
    )
    return read_states(conn, ids), taken


def free_dead(conn: Connection, now: datetime) -> dict[str, int]:
    """Free the unexpired leases of holders known dead; {owner: feeds freed}."""
    owners = conn.execute(
        select(feeds.c.lease_owner, func.count())
        .where(feeds.c.lease_owner.is_not(None), feeds.c.lease_until > now)
        .group_by(feeds.c.lease_owner)
    ).all()
    counts = {r[0]: int(r[1]) for r in owners}
    gone = holders.dead(conn, counts)
    if gone:
        conn.execute(update(feeds).where(feeds.c.lease_owner.in_(gone))
                     .values(lease_owner=None, lease_until=None))  # fmt: skip
    return {owner: counts[owner] for owner in gone}


def held(conn: Connection, now: datetime, owner: str) -> list[holders.Holding]:
    """Who else holds pollable feeds now (leases unexpired): how many, until when, alive?"""
    rows = conn.execute(
        select(feeds.c.lease_owner, func.count(), func.max(feeds.c.lease_until))
        .where(feeds.c.active, ~feeds.c.gone, feeds.c.lease_owner.is_not(None),
               feeds.c.lease_owner != owner, feeds.c.lease_until > now)
        .group_by(feeds.c.lease_owner).order_by(feeds.c.lease_owner)
    ).all()  # fmt: skip
    alive = holders.alive(conn, [r[0] for r in rows])
    return [holders.Holding(r[0], int(r[1]), r[2], r[0] in alive) for r in rows]


def release(conn: Connection, feed_id: int, owner: str) -> None:
    conn.execute(
        update(feeds)
        .where(feeds.c.id == feed_id, feeds.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def sweep(conn: Connection, now: datetime) -> int:
    """Clear expired leases (their holders crashed or hung); returns how many."""
    result = conn.execute(
        update(feeds)
        .where(feeds.c.lease_until.is_not(None), feeds.c.lease_until <= now)
        .values(lease_owner=None, lease_until=None)
    )
    return int(result.rowcount or 0)


def listing(conn: Connection, url: str | None = None) -> list[FeedState]:
    counts = (
        select(sightings.c.feed_id, func.count(func.distinct(sightings.c.item_id)).label("n"))
        .group_by(sightings.c.feed_id)
        .subquery()
    )
    query = (
        select(feeds, func.coalesce(counts.c.n, 0).label("item_count"))
        .outerjoin(counts, counts.c.feed_id == feeds.c.id)
        .order_by(feeds.c.url)
    )
    if url is not None:
        query = query.where(or_(feeds.c.url == url, feeds.c.config_url == url))
    return [to_state(r, r.item_count) for r in conn.execute(query)]


def unpolled(conn: Connection, since: datetime) -> dict[bool, int]:
    """``Store.unpolled_since``: {gone: count} of the active feeds not polled since ``since``."""
    rows = conn.execute(
        select(feeds.c.gone, func.count())
        .where(feeds.c.active, or_(feeds.c.last_polled.is_(None), feeds.c.last_polled < since))
        .group_by(feeds.c.gone)
    ).all()  # fmt: skip
    return {bool(gone): int(count) for gone, count in rows}


def item_rate(conn: Connection, feed_id: int, now: datetime, days: float) -> float | None:
    """New entries per day this feed brought in the window (its first document's backlog aside)."""
    since = now - timedelta(days=days)
    row = conn.execute(RATE, {"feed_id": feed_id, "since": since, "now": now}).one()
    return rate_of(row.start, int(row.n), since, now)


def rate_of(start: datetime | None, n: int, since: datetime, now: datetime) -> float | None:
    """``item_rate`` from the feed's first sighting and the count after it in the window."""
    if start is None:
        return None
    window_start = max(since, start)
    if now - window_start < MIN_RATE_HISTORY:
        return None
    return n / ((now - window_start).total_seconds() / 86400.0)


FEED_BY_URL = select(feeds.c.id).where(feeds.c.url == bindparam("url"))


def poll_state(
    conn: Connection, feed: Row[Any], result: PollResult, summary: PollSummary, link_keys: bool
) -> dict[str, Any]:
    """The feed row after this poll: every column of ``feedrows.STATE_COLUMNS``."""
    now, ok = result.polled_at, result.status == STATUS_OK
    etag, modified = feed.etag, feed.last_modified
    if ok:
        etag, modified = result.etag, result.last_modified
    elif result.status == STATUS_NOT_MODIFIED:
        etag = feed.etag if result.etag is None else result.etag
        modified = feed.last_modified if result.last_modified is None else result.last_modified
    url = feed.url
    if result.url and result.url != feed.url and not url_taken(conn, result.url):
        url = result.url
    return {
        "feed_id": feed.id, "last_polled": now, "last_status": result.status,
        "last_http_status": result.http_status, "last_error": result.error,
        "error_count": result.error_count, "interval": result.interval,
        "next_check": result.next_check, "next_reason": result.next_reason,
        "lease_owner": None, "lease_until": None, "gone": result.gone,
        "redirect_url": result.redirect_url, "redirect_count": result.redirect_count,
        "link_keys": link_keys, "last_new_items": summary.new_items, "etag": etag,
        "last_modified": modified, "last_document_at": now if ok else feed.last_document_at,
        "last_unconditional": now if result.unconditional else feed.last_unconditional,
        "title": result.title if result.title and not feed.title else feed.title, "url": url,
        "items_per_day": feed.items_per_day,  # unless recounted (rate_due)
    }  # fmt: skip


def rate_due(feed: Row[Any], now: datetime, summary: PollSummary) -> bool:
    """Whether to recount the feed's recent rate of new items: when this poll brought some,
    else once per ``RATE_REFRESH``. A feed that goes quiet sees its rate fall (an hour late at
    most), and a poll that brings nothing costs no count."""
    last = feed.last_polled
    return bool(summary.new_items or summary.new_sightings or last is None
                or _slot(last) != _slot(now))  # fmt: skip


def _slot(when: datetime) -> int:
    return int(when.timestamp() // RATE_REFRESH.total_seconds())


def history_row(feed_id: int, result: PollResult, summary: PollSummary) -> dict[str, Any]:
    """The feed's poll history row (housekeeping prunes the history: maintenance.prune_polls)."""
    return {
        "feed_id": feed_id, "polled_at": result.polled_at, "status": result.status,
        "http_status": result.http_status, "new_items": summary.new_items, "error": result.error,
        "next_check": result.next_check, "next_reason": result.next_reason,
        "warning": result.warning,
    }  # fmt: skip


def url_taken(conn: Connection, url: str) -> bool:
    return conn.execute(FEED_BY_URL, {"url": url}).first() is not None


def to_state(row: Row[Any], item_count: int = 0) -> FeedState:
    m = row._mapping
    return FeedState(
        id=m["id"], url=m["url"], title=m["title"], tags=tuple(m["tags"] or ()),
        interval=m["interval"], next_check=m["next_check"], next_reason=m["next_reason"],
        error_count=m["error_count"], etag=m["etag"], last_modified=m["last_modified"],
        last_polled=m["last_polled"], last_status=m["last_status"],
        last_http_status=m["last_http_status"], last_error=m["last_error"],
        last_new_items=m["last_new_items"], last_unconditional=m["last_unconditional"],
        gone=m["gone"], redirect_url=m["redirect_url"], redirect_count=m["redirect_count"],
        link_keys=m["link_keys"], item_count=int(item_count), active=m["active"],
        config_url=m["config_url"], items_per_day=m["items_per_day"],
    )  # fmt: skip


def history(conn: Connection, feed_id: int, limit: int) -> list[dict[str, Any]]:
    query = (
        select(polls.c.polled_at, polls.c.status, polls.c.http_status, polls.c.new_items,
               polls.c.error, polls.c.next_check, polls.c.next_reason, polls.c.warning)
        .where(polls.c.feed_id == feed_id).order_by(polls.c.id.desc()).limit(limit)
    )  # fmt: skip
    return [dict(row._mapping) for row in conn.execute(query)]
