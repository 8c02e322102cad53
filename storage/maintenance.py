"""Housekeeping over the whole archive: retention, statistics, integrity. No poll writes here.

Retention works per feed, on that feed's sightings, and never touches a sighting the feed's
last fetched document still carried (its ``last_seen`` equals the feed's ``last_document_at``):
deleting those would only bring them back as "new" on the next poll. An item is deleted when
its last sighting goes; an item another feed still carries stays.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select

from storage import captures as captures_mod
from storage.dialect import integrity_errors
from storage.tables import blobs, captures, feeds, items, polls, revisions, sightings

HISTORY = 20  # polls kept per feed for ``feeds show``


def prune_polls(conn: Connection, keep: int = HISTORY) -> int:
    """Drop each feed's polls beyond its last ``keep``: pruned in bulk by housekeeping rather
    than on every poll, where it cost an eighth of an unchanged feed's poll."""
    rank = func.row_number().over(partition_by=polls.c.feed_id, order_by=polls.c.id.desc())
    ranked = select(polls.c.id, rank.label("rank")).subquery()
    old = select(ranked.c.id).where(ranked.c.rank > keep)
    return int(conn.execute(delete(polls).where(polls.c.id.in_(old))).rowcount or 0)


def retention(conn: Connection, now: datetime) -> int:
    """Apply every feed's retention limits; returns how many items were deleted."""
    limited = conn.execute(
        select(
            feeds.c.id, feeds.c.retention_days, feeds.c.retention_count, feeds.c.last_document_at
        ).where(or_(feeds.c.retention_days.is_not(None), feeds.c.retention_count.is_not(None)))
    ).all()
    touched: set[int] = set()
    for feed in limited:
        ids = _expired_sightings(conn, feed, now)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            touched.update(
                conn.execute(select(sightings.c.item_id).where(sightings.c.id.in_(chunk))).scalars()
            )
            conn.execute(delete(sightings).where(sightings.c.id.in_(chunk)))
    deleted = _delete_unsighted(conn, sorted(touched))
    if deleted:
        captures_mod.drop_orphan_blobs(conn)
    return deleted


def _expired_sightings(conn: Connection, feed: Any, now: datetime) -> list[int]:
    base = select(sightings.c.id).where(sightings.c.feed_id == feed.id)
    if feed.last_document_at is not None:
        base = base.where(sightings.c.last_seen != feed.last_document_at)
    expired: set[int] = set()
    if feed.retention_days is not None:
        cutoff = now - timedelta(days=feed.retention_days)
        expired.update(conn.execute(base.where(sightings.c.first_seen < cutoff)).scalars())
    if feed.retention_count is not None:
        newest = (
            select(sightings.c.id)
            .where(sightings.c.feed_id == feed.id)
            .order_by(sightings.c.first_seen.desc(), sightings.c.id.desc())
            .limit(feed.retention_count)
        )
        keep = set(conn.execute(newest).scalars())
        expired.update(i for i in conn.execute(base).scalars() if i not in keep)
    return sorted(expired)


def _delete_unsighted(conn: Connection, item_ids: list[int]) -> int:
    deleted = 0
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start : start + 500]
        still = select(sightings.c.item_id).where(sightings.c.item_id.in_(chunk))
        orphans = and_(items.c.id.in_(chunk), items.c.id.not_in(still))
        deleted += int(conn.execute(delete(items).where(orphans)).rowcount or 0)
    return deleted


def stats(conn: Connection) -> dict[str, Any]:
    def count(table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    n_items, n_sightings = count(items), count(sightings)
    raw, stored = conn.execute(
        select(
            func.coalesce(func.sum(blobs.c.raw_size), 0),
            func.coalesce(func.sum(blobs.c.stored_size), 0),
        )
    ).one()
    captured = conn.execute(
        select(func.coalesce(func.sum(blobs.c.raw_size), 0)).select_from(
            captures.join(blobs, blobs.c.sha256 == captures.c.blob_sha256)
        )
    ).scalar_one()
    by_status: dict[str, int] = {
        str(k): int(v)
        for k, v in conn.execute(
            select(items.c.article_status, func.count()).group_by(items.c.article_status)
        )
    }
    return {
        "feeds": count(feeds),
        "active_feeds": int(conn.execute(
            select(func.count()).select_from(feeds).where(feeds.c.active)).scalar_one()),
        "items": n_items,
        "sightings": n_sightings,
        "duplicates_folded": max(0, n_sightings - n_items),
        "revisions": count(revisions),
        "captures": count(captures),
        "blobs": count(blobs),
        "captures_raw_bytes": int(captured),  # every capture's body, as if stored separately
        "blobs_raw_bytes": int(raw),  # after deduplication
        "blobs_stored_bytes": int(stored),  # after deduplication and compression
        "compression_ratio": round(int(raw) / int(stored), 2) if stored else None,
        "articles": {str(k): int(v) for k, v in by_status.items()},
    }  # fmt: skip


def integrity(conn: Connection) -> list[str]:
    """The database's own check plus the archive's invariants; [] when all is well."""
    problems = integrity_errors(conn)
    no_revision = conn.execute(
        select(func.count()).select_from(items)
        .where(items.c.id.not_in(select(revisions.c.item_id)))
    ).scalar_one()  # fmt: skip
    if no_revision:
        problems.append(f"{no_revision} items have no revision")
    orphan = conn.execute(
        select(func.count()).select_from(captures)
        .where(captures.c.blob_sha256.not_in(select(blobs.c.sha256)))
    ).scalar_one()  # fmt: skip
    if orphan:
        problems.append(f"{orphan} captures lack their blob")
    return problems
