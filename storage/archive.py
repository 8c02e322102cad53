"""Items out of the database in the export's shape, a page at a time; and known_entries.

No file handling here (``storage.export`` does that) and no transaction handling (``Store``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, select

from storage.items import iso, with_offset
from storage.records import Entry, ExportFilter
from storage.tables import feeds, items, revisions, sightings

BATCH = 500  # items per import transaction


def known_entries(conn: Connection, feed_id: int, entries: Sequence[Entry]) -> set[str]:
    """Entries this feed already carried, by key or by link (a relinked guid is no new story)."""
    keys = {e.key for e in entries}
    links = {e.url for e in entries if e.url}
    found_keys: set[str] = set()
    found_links: set[str] = set()
    for chunk in _chunks(sorted(keys)):
        q = select(sightings.c.key).where(
            sightings.c.feed_id == feed_id, sightings.c.key.in_(chunk)
        )
        found_keys.update(conn.execute(q).scalars())
    for chunk in _chunks(sorted(links)):
        q = select(sightings.c.link).where(
            sightings.c.feed_id == feed_id, sightings.c.link.in_(chunk)
        )
        found_links.update(x for x in conn.execute(q).scalars() if x)
    return {e.key for e in entries if e.key in found_keys or e.url in found_links}


# -- export ----------------------------------------------------------------------------------


def export_page(
    conn: Connection, flt: ExportFilter, after: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` items with id > ``after``, and the last id read (keyset pagination)."""
    query = (
        select(items, feeds.c.url.label("feed_url"))
        .join(feeds, feeds.c.id == items.c.feed_id)
        .where(items.c.id > after)
        .order_by(items.c.id)
        .limit(limit)
    )
    if flt.since is not None:
        query = query.where(items.c.changed_at >= flt.since)
    if flt.until is not None:
        query = query.where(items.c.changed_at < flt.until)
    if flt.feed_url is not None:
        in_feed = (
            select(sightings.c.item_id)
            .join(feeds, feeds.c.id == sightings.c.feed_id)
            .where(feeds.c.url == flt.feed_url)
        )
        query = query.where(items.c.id.in_(in_feed))
    if flt.feed_ids is not None:
        in_feeds = select(sightings.c.item_id).where(sightings.c.feed_id.in_(flt.feed_ids))
        query = query.where(items.c.id.in_(in_feeds))
    rows = conn.execute(query).all()
    if not rows:
        return [], after
    return export_dicts(conn, rows), rows[-1].id


def export_dicts(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of ``items`` (with ``feed_url``) in the export's shape, sightings and revisions
    read in two queries for the lot."""
    ids = [r.id for r in rows]
    seen = _grouped(conn, _sightings_query(ids))
    revs = _grouped(conn, select(revisions).where(revisions.c.item_id.in_(ids))
                    .order_by(revisions.c.item_id, revisions.c.seq))  # fmt: skip
    return [_item_dict(r, seen.get(r.id, []), revs.get(r.id, [])) for r in rows]


def _sightings_query(ids: list[int]) -> Any:
    return (
        select(sightings, feeds.c.url.label("feed_url"))
        .join(feeds, feeds.c.id == sightings.c.feed_id)
        .where(sightings.c.item_id.in_(ids))
        .order_by(sightings.c.item_id, sightings.c.id)
    )


def _grouped(conn: Connection, query: Any) -> dict[int, list[Any]]:
    rows = conn.execute(query).all()
    return {k: list(g) for k, g in groupby(rows, key=lambda r: r.item_id)}


def _last_seen(r: Any, seen: list[Any]) -> Any:
    """When any feed last named the item: a poll moves the sighting's ``last_seen`` only; the
    item's own is as of its last change (or import), so that a known entry seen again unchanged
    leaves the item's row, article and all, unwritten."""
    return max([r.last_seen, *(s.last_seen for s in seen)])


def _item_dict(r: Any, seen: list[Any], revs: list[Any]) -> dict[str, Any]:
    return {
        "id": r.uid, "feed_url": r.feed_url, "guid": r.guid, "url": r.url, "title": r.title,
        "summary": r.summary, "content_html": r.content_html, "authors": list(r.authors),
        "published": iso(with_offset(r.published, r.published_offset)),
        "updated": iso(with_offset(r.updated, r.updated_offset)),
        "first_seen": iso(r.first_seen), "last_seen": iso(_last_seen(r, seen)),
        "changed_at": iso(r.changed_at), "content_hash": r.content_hash,
        "canonical_url": r.page_canonical_url, "canonical_key": r.canonical_url,
        "enclosures": r.enclosures, "article": r.article,
        "article_status": r.article_status, "article_error": r.article_error,
        "article_attempts": r.article_attempts,
        "sightings": [
            {"feed_url": s.feed_url, "guid": s.guid, "key": s.key, "link": s.link,
             "first_seen": iso(s.first_seen), "last_seen": iso(s.last_seen)}
            for s in seen
        ],
        "revisions": [
            {"seq": v.seq, "recorded_at": iso(v.recorded_at), "title": v.title,
             "summary": v.summary, "text": v.text, "content_hash": v.content_hash, "diff": v.diff,
             "enclosures": v.enclosures}
            for v in revs
        ],
        "provenance": {"fetched_at": iso(r.fetched_at), "final_url": r.final_url,
                       "content_hash": r.content_hash, "extractor": r.extractor},
    }  # fmt: skip


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), BATCH):
        yield values[start : start + BATCH]
