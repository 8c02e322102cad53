"""Export items back into the database, one batch per call (the caller's transaction).

Items are matched by uid. A new one is inserted; an existing one gets the sightings (by feed
and key) and revisions (by sequence number) it lacks, and its own columns only when the
record's ``changed_at`` is newer. Importing the same items twice therefore changes nothing.
Each batch is read and written in a handful of statements, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, select, update

from storage import feeds as feeds_mod
from storage.dialect import insert
from storage.identity import content_fingerprint
from storage.items import offset_minutes
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
        return ImportSummary(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def batches(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    it = iter(records)
    while batch := list(islice(it, BATCH)):
        yield batch


def import_batch(conn: Connection, batch: list[dict[str, Any]]) -> ImportSummary:
    feed_ids, feeds_added = _feeds(conn, batch)
    known = _existing(conn, [rec["id"] for rec in batch])
    fresh = [rec for rec in batch if rec["id"] not in known]
    ids = _insert_items(conn, fresh, feed_ids)
    updated: set[str] = set()
    for rec in batch:
        if rec["id"] in known and _changed_at(rec) > known[rec["id"]][1]:
            values = _item_values(rec, feed_ids[rec["feed_url"]])
            conn.execute(update(items).where(items.c.id == known[rec["id"]][0]).values(**values))
            updated.add(rec["id"])
    ids |= {uid: item_id for uid, (item_id, _) in known.items()}
    n_sight, grew_s = _insert_children(conn, sightings, _sighting_rows(batch, ids, feed_ids))
    n_revs, grew_r = _insert_children(conn, revisions, _revision_rows(batch, ids))
    grew = grew_s | grew_r
    grown = {uid for uid, item_id in ids.items() if item_id in grew}
    updated |= {uid for uid in grown if uid in known}
    unchanged = len(known) - len(updated & known.keys())
    return ImportSummary(len(fresh), len(updated), unchanged, n_sight, n_revs, feeds_added)


def _feeds(conn: Connection, batch: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """Every feed the batch names, by URL; unknown ones are created inactive (never polled)."""
    first: dict[str, datetime] = {}
    for rec in batch:
        for url, seen in [(rec["feed_url"], rec["first_seen"])] + [
            (s["feed_url"], s["first_seen"]) for s in rec["sightings"]
        ]:  # fmt: skip
            first.setdefault(url, _time(seen))
    query = select(feeds.c.url, feeds.c.id).where(feeds.c.url.in_(sorted(first)))
    found = {r.url: r.id for r in conn.execute(query)}
    missing = [
        feeds_mod.new_feed_values(url, at, "imported") | {"active": False}
        for url, at in first.items() if url not in found
    ]  # fmt: skip
    if missing:
        stmt = feeds.insert().returning(feeds.c.url, feeds.c.id)
        found |= {r.url: r.id for r in conn.execute(stmt, missing)}
    return found, len(missing)


def _existing(conn: Connection, uids: list[str]) -> dict[str, tuple[int, datetime]]:
    query = select(items.c.uid, items.c.id, items.c.changed_at).where(items.c.uid.in_(uids))
    return {r.uid: (r.id, r.changed_at) for r in conn.execute(query)}


def _insert_items(
    conn: Connection, fresh: list[dict[str, Any]], feed_ids: dict[str, int]
) -> dict[str, int]:
    if not fresh:
        return {}
    unique = list({rec["id"]: rec for rec in fresh}.values())  # a uid twice in one file
    rows = [_item_values(rec, feed_ids[rec["feed_url"]]) for rec in unique]
    stmt = items.insert().returning(items.c.uid, items.c.id)
    return {r.uid: r.id for r in conn.execute(stmt, rows)}


def _insert_children(
    conn: Connection, table: Any, rows: list[dict[str, Any]]
) -> tuple[int, set[int]]:
    """Insert what is missing; returns how many rows were added and to which items."""
    if not rows:
        return 0, set()
    stmt = insert(conn, table).on_conflict_do_nothing().returning(table.c.item_id)
    added = list(conn.execute(stmt, rows).scalars())
    return len(added), set(added)


def _sighting_rows(
    batch: list[dict[str, Any]], ids: dict[str, int], feed_ids: dict[str, int]
) -> list[dict[str, Any]]:
    return [
        {"item_id": ids[rec["id"]], "feed_id": feed_ids[s["feed_url"]], "key": s["key"],
         "guid": s.get("guid"), "link": s.get("link"), "first_seen": _time(s["first_seen"]),
         "last_seen": _time(s["last_seen"])}
        for rec in batch for s in rec["sightings"]
    ]  # fmt: skip


def _revision_rows(batch: list[dict[str, Any]], ids: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"item_id": ids[rec["id"]], "seq": v["seq"], "recorded_at": _time(v["recorded_at"]),
         "title": v.get("title"), "summary": v.get("summary"), "text": v.get("text"),
         "content_hash": v["content_hash"], "diff": v.get("diff"),
         "enclosures": v.get("enclosures")}
        for rec in batch for v in rec["revisions"]
    ]  # fmt: skip


def _item_values(rec: dict[str, Any], feed_id: int) -> dict[str, Any]:
    published, updated = _time_opt(rec.get("published")), _time_opt(rec.get("updated"))
    prov = rec.get("provenance") or {}
    body = rec.get("content_html") or rec.get("summary")
    return {
        "uid": rec["id"], "feed_id": feed_id, "guid": rec.get("guid"), "url": rec.get("url"),
        "canonical_url": rec.get("canonical_url"), "enclosures": rec.get("enclosures"),
        "fingerprint": content_fingerprint(rec.get("title"), body),
        "title": rec.get("title"), "summary": rec.get("summary"),
        "content_html": rec.get("content_html"), "authors": list(rec.get("authors") or []),
        "published": published, "published_offset": offset_minutes(published),
        "updated": updated, "updated_offset": offset_minutes(updated),
        "first_seen": _time(rec["first_seen"]), "last_seen": _time(rec["last_seen"]),
        "changed_at": _changed_at(rec),
        "content_hash": rec["content_hash"], "article": rec.get("article"),
        "article_status": rec["article_status"], "article_error": rec.get("article_error"),
        "article_attempts": int(rec.get("article_attempts") or 0), "article_next_try": None,
        "fetched_at": _time_opt(prov.get("fetched_at")), "final_url": prov.get("final_url"),
        "extractor": prov.get("extractor"),
    }  # fmt: skip


def _changed_at(rec: dict[str, Any]) -> datetime:
    return _time(rec.get("changed_at") or rec["last_seen"])


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _time_opt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
