"""Items in and out of the database in the export's shape: pages for export, batches for import.

No file handling here (``storage.export`` does that) and no transaction handling (``Store``).
Import matches items by uid and only adds what is missing (sightings by feed and key,
revisions by sequence number), so importing the same items twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, islice
from typing import Any

from sqlalchemy import Connection, select, update

from storage import feeds as feeds_mod
from storage.dialect import insert
from storage.identity import content_fingerprint
from storage.items import iso, offset_minutes, with_offset
from storage.records import Entry, ExportFilter
from storage.tables import feeds, items, revisions, sightings

BATCH = 500  # items per import transaction


@dataclass(frozen=True, slots=True)
class ImportSummary:
    items_added: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    sightings_added: int = 0
    revisions_added: int = 0
    feeds_added: int = 0

    def __add__(self, other: ImportSummary) -> ImportSummary:
        return ImportSummary(*(a + b for a, b in zip(_astuple(self), _astuple(other), strict=True)))


def _astuple(s: ImportSummary) -> tuple[int, ...]:
    return (s.items_added, s.items_updated, s.items_unchanged, s.sightings_added,
            s.revisions_added, s.feeds_added)  # fmt: skip


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
    rows = conn.execute(query).all()
    if not rows:
        return [], after
    ids = [r.id for r in rows]
    seen = _grouped(conn, _sightings_query(ids))
    revs = _grouped(conn, select(revisions).where(revisions.c.item_id.in_(ids))
                    .order_by(revisions.c.item_id, revisions.c.seq))  # fmt: skip
    page = [_item_dict(r, seen.get(r.id, []), revs.get(r.id, [])) for r in rows]
    return page, ids[-1]


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


def _item_dict(r: Any, seen: list[Any], revs: list[Any]) -> dict[str, Any]:
    return {
        "id": r.uid, "feed_url": r.feed_url, "guid": r.guid, "url": r.url, "title": r.title,
        "summary": r.summary, "content_html": r.content_html, "authors": list(r.authors),
        "published": iso(with_offset(r.published, r.published_offset)),
        "updated": iso(with_offset(r.updated, r.updated_offset)),
        "first_seen": iso(r.first_seen), "last_seen": iso(r.last_seen),
        "changed_at": iso(r.changed_at), "content_hash": r.content_hash,
        "canonical_url": r.canonical_url, "article": r.article,
        "article_status": r.article_status, "article_error": r.article_error,
        "article_attempts": r.article_attempts,
        "sightings": [
            {"feed_url": s.feed_url, "guid": s.guid, "key": s.key, "link": s.link,
             "first_seen": iso(s.first_seen), "last_seen": iso(s.last_seen)}
            for s in seen
        ],
        "revisions": [
            {"seq": v.seq, "recorded_at": iso(v.recorded_at), "title": v.title,
             "summary": v.summary, "text": v.text, "content_hash": v.content_hash, "diff": v.diff}
            for v in revs
        ],
        "provenance": {"fetched_at": iso(r.fetched_at), "final_url": r.final_url,
                       "content_hash": r.content_hash, "extractor": r.extractor},
    }  # fmt: skip


# -- import ----------------------------------------------------------------------------------


def batches(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    it = iter(records)
    while batch := list(islice(it, BATCH)):
        yield batch


def import_batch(conn: Connection, batch: list[dict[str, Any]]) -> ImportSummary:
    total = ImportSummary()
    feed_ids: dict[str, int] = {}
    for record in batch:
        total = total + _import_one(conn, record, feed_ids)
    return total


def _feed_id(conn: Connection, url: str, at: datetime, cache: dict[str, int]) -> tuple[int, int]:
    """The feed's id, created inactive (kept, never polled) if unknown; and 1 if created."""
    if url in cache:
        return cache[url], 0
    found = conn.execute(select(feeds.c.id).where(feeds.c.url == url)).scalar()
    created = 0
    if found is None:
        values = feeds_mod.new_feed_values(url, at, "imported") | {"active": False}
        found = conn.execute(feeds.insert().values(**values).returning(feeds.c.id)).scalar_one()
        created = 1
    cache[url] = int(found)
    return cache[url], created


def _import_one(conn: Connection, rec: dict[str, Any], cache: dict[str, int]) -> ImportSummary:
    changed_at = _time(rec["changed_at"] if rec.get("changed_at") else rec["last_seen"])
    assert changed_at is not None
    feed_id, feeds_added = _feed_id(conn, rec["feed_url"], _time_req(rec["first_seen"]), cache)
    values = _item_values(rec, feed_id, changed_at)
    existing = conn.execute(
        select(items.c.id, items.c.changed_at).where(items.c.uid == rec["id"])
    ).first()
    added = updated = 0
    if existing is None:
        item_id = int(
            conn.execute(items.insert().values(**values).returning(items.c.id)).scalar_one()
        )
        added = 1
    else:
        item_id = existing.id
        if changed_at > existing.changed_at:
            conn.execute(update(items).where(items.c.id == item_id).values(**values))
            updated = 1
    n_sight, n_feeds = _import_sightings(conn, item_id, rec["sightings"], cache)
    n_revs = _import_revisions(conn, item_id, rec["revisions"])
    if existing is not None and not updated and (n_sight or n_revs):
        updated = 1
    unchanged = 1 if existing is not None and not updated else 0
    return ImportSummary(added, updated, unchanged, n_sight, n_revs, feeds_added + n_feeds)


def _item_values(rec: dict[str, Any], feed_id: int, changed_at: datetime) -> dict[str, Any]:
    published, updated = _time(rec.get("published")), _time(rec.get("updated"))
    prov = rec.get("provenance") or {}
    body = rec.get("content_html") or rec.get("summary")
    return {
        "uid": rec["id"], "feed_id": feed_id, "guid": rec.get("guid"), "url": rec.get("url"),
        "canonical_url": rec.get("canonical_url"),
        "fingerprint": content_fingerprint(rec.get("title"), body),
        "title": rec.get("title"), "summary": rec.get("summary"),
        "content_html": rec.get("content_html"), "authors": list(rec.get("authors") or []),
        "published": published, "published_offset": offset_minutes(published),
        "updated": updated, "updated_offset": offset_minutes(updated),
        "first_seen": _time(rec["first_seen"]), "last_seen": _time(rec["last_seen"]),
        "changed_at": changed_at, "content_hash": rec["content_hash"],
        "article": rec.get("article"), "article_status": rec["article_status"],
        "article_error": rec.get("article_error"),
        "article_attempts": int(rec.get("article_attempts") or 0),
        "fetched_at": _time(prov.get("fetched_at")), "final_url": prov.get("final_url"),
        "extractor": prov.get("extractor"),
    }  # fmt: skip


def _import_sightings(
    conn: Connection, item_id: int, seen: list[dict[str, Any]], cache: dict[str, int]
) -> tuple[int, int]:
    added = feeds_added = 0
    for s in seen:
        feed_id, created = _feed_id(conn, s["feed_url"], _time_req(s["first_seen"]), cache)
        feeds_added += created
        row = {"item_id": item_id, "feed_id": feed_id, "key": s["key"], "guid": s.get("guid"),
               "link": s.get("link"), "first_seen": _time(s["first_seen"]),
               "last_seen": _time(s["last_seen"])}  # fmt: skip
        stmt = insert(conn, sightings).values(**row).on_conflict_do_nothing()
        added += len(conn.execute(stmt.returning(sightings.c.id)).all())
    return added, feeds_added


def _import_revisions(conn: Connection, item_id: int, revs: list[dict[str, Any]]) -> int:
    added = 0
    for v in revs:
        row = {"item_id": item_id, "seq": v["seq"], "recorded_at": _time(v["recorded_at"]),
               "title": v.get("title"), "summary": v.get("summary"), "text": v.get("text"),
               "content_hash": v["content_hash"], "diff": v.get("diff")}  # fmt: skip
        stmt = insert(conn, revisions).values(**row).on_conflict_do_nothing()
        added += len(conn.execute(stmt.returning(revisions.c.id)).all())
    return added


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _time_req(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), BATCH):
        yield values[start : start + BATCH]
