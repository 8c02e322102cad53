"""Export items into the database: every value checked, each file in ONE transaction.

Why both (issue 10): a value can pass the schema and still fail in a database (a 2**70 integer,
a revision seq beyond PostgreSQL's int4, a time that leaves the calendar in UTC), and two
records can contradict each other (one id twice, a sighting key claimed by two items), which
shows only once the earlier one is written. Every value is checked against what both databases
store (``importcheck``; the file reader does it over the whole file before the first write, so a
bad file never takes the write lock), and the file is written in one transaction, so whatever
only the database can tell, or fails unforeseen, rolls the whole file back. Memory stays
bounded: records come ``BATCH`` at a time (or ``BATCH_CHARS`` of JSON), and what must be known
across batches (the ids and sighting keys met so far, with their lines) lives in two temporary
tables, not in Python.

Items are matched by uid. A new one is inserted; an existing one gets the sightings (by feed
and key) and revisions (by sequence number) it lacks, and its own columns only when the
record's ``changed_at`` is newer. Importing the same items twice therefore changes nothing.
A sighting key the archive already gives to another item stays with that item (the archive
folded them; moving it would split its history) and is counted and logged; a new item left with
no sighting at all refuses the file.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, Table, Text, select, update

from storage import feeds as feeds_mod
from storage import searchindex
from storage.dialect import insert
from storage.errors import ExportFormatError
from storage.identity import content_fingerprint
from storage.importcheck import BadRecord, Record, prepare
from storage.items import offset_minutes
from storage.tables import feeds, items, revisions, sightings

log = logging.getLogger(__name__)
BATCH = 500  # items per batch of statements
BATCH_CHARS = 16 << 20  # and at most this much JSON text in one batch (items can be large)
CHUNK = 500  # values per IN list
LOGGED = 10  # sightings left with another item: this many are logged one by one

_scratch = MetaData()
# What this import has met so far: created in its transaction, gone with it.
seen_ids = Table(
    "import_seen_ids", _scratch,
    Column("uid", Text, primary_key=True), Column("line", Integer, nullable=False),
    prefixes=["TEMPORARY"], postgresql_on_commit="DROP",
)  # fmt: skip
seen_keys = Table(
    "import_seen_keys", _scratch,
    Column("feed_id", Integer, primary_key=True), Column("key", Text, primary_key=True),
    Column("line", Integer, nullable=False), Column("uid", Text, nullable=False),
    prefixes=["TEMPORARY"], postgresql_on_commit="DROP",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ImportSummary:
    items_added: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    sightings_added: int = 0
    revisions_added: int = 0
    feeds_added: int = 0
    sightings_elsewhere: int = 0  # keys the archive already gives to another item

    def __add__(self, other: ImportSummary) -> ImportSummary:
        return ImportSummary(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def batches(records: Iterable[Record]) -> Iterator[list[Record]]:
    """``BATCH`` records, or fewer when they hold more than ``BATCH_CHARS`` of text."""
    batch: list[Record] = []
    chars = 0
    for rec in records:
        batch.append(rec)
        chars += rec.size
        if len(batch) >= BATCH or chars >= BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def prepare_record(item: dict[str, Any]) -> dict[str, Any]:
    """The item as it will be stored, or ``BadRecord`` naming the member that cannot be."""
    return prepare(item, _rows_of)


def _rows_of(rec: dict[str, Any]) -> list[tuple[str, Table, dict[str, Any]]]:
    """The rows ``import_batch`` writes for one record (0 for every database id)."""
    zero: defaultdict[str, int] = defaultdict(int)
    out: list[tuple[str, Table, dict[str, Any]]] = [
        ("feed_url", feeds, {"url": rec["feed_url"]}), ("", items, _item_values(rec, 0))
    ]
    out += [(f"sightings/{i}/feed_url", feeds, {"url": s["feed_url"]})
            for i, s in enumerate(rec["sightings"])]  # fmt: skip
    out += [(f"sightings/{i}", sightings, row)
            for i, row in enumerate(_sighting_rows([rec], zero, zero))]  # fmt: skip
    out += [(f"revisions/{i}", revisions, row)
            for i, row in enumerate(_revision_rows([rec], zero))]  # fmt: skip
    return out


class ImportRun:
    """One file's import in the caller's transaction: ``add`` every batch, then ``finish``."""

    def __init__(self, conn: Connection, source: str) -> None:
        self.conn = conn
        self.source = source
        self.total = ImportSummary()
        self.lines = ""  # the batch being written, for an error the database raises
        _scratch.drop_all(conn, checkfirst=True)  # SQLite: a connection may keep an old one
        _scratch.create_all(conn)

    def add(self, batch: list[Record]) -> None:
        self.lines = f"lines {batch[0].line}-{batch[-1].line}"
        recs = [self._prepared(r) for r in batch]
        self._remember_ids(recs)
        feed_ids, feeds_added = _feeds(self.conn, [rec.item for rec in recs])
        self._remember_keys(recs, feed_ids)
        kept, elsewhere = self._keys_of_others(recs, feed_ids)
        summary = import_batch(self.conn, kept, feed_ids)
        self.total = self.total + summary + ImportSummary(feeds_added=feeds_added,
                                                          sightings_elsewhere=elsewhere)

    def finish(self) -> ImportSummary:
        _scratch.drop_all(self.conn)
        return self.total

    def fail(self, rec: Record, message: str) -> ExportFormatError:
        uid = rec.item.get("id")
        return ExportFormatError(f"{self.source}: {rec.where()}, id {uid!r}: {message}")

    def _prepared(self, rec: Record) -> Record:
        try:
            return Record(rec.line, rec.index, prepare_record(rec.item), rec.size)
        except BadRecord as exc:
            raise self.fail(rec, str(exc)) from None

    def _remember_ids(self, recs: list[Record]) -> None:
        """One record per id in a file: a second would mix two records' fields."""
        first: dict[str, Record] = {}
        for rec in recs:
            earlier = first.setdefault(rec.item["id"], rec)
            if earlier is not rec:
                raise self.fail(rec, f"the id repeats {earlier.where()}")
        rows = [{"uid": rec.item["id"], "line": rec.line} for rec in recs]
        stmt = insert(self.conn, seen_ids).on_conflict_do_nothing().returning(seen_ids.c.uid)
        fresh = set(self.conn.execute(stmt, rows).scalars())
        for rec in recs:
            if rec.item["id"] not in fresh:
                line = self.conn.execute(select(seen_ids.c.line).where(
                    seen_ids.c.uid == rec.item["id"])).scalar()  # fmt: skip
                raise self.fail(rec, f"the id repeats line {line}")

    def _remember_keys(self, recs: list[Record], feed_ids: dict[str, int]) -> None:
        """One item per sighting key (feed, key) in a file."""
        first: dict[tuple[int, str], tuple[Record, str]] = {}
        rows = []
        for rec in recs:
            for s in rec.item["sightings"]:
                pair = (feed_ids[s["feed_url"]], s["key"])
                earlier, _ = first.setdefault(pair, (rec, s["feed_url"]))
                if earlier is not rec:
                    raise self._claimed(rec, s["feed_url"], s["key"], earlier.item["id"],
                                        earlier.where())  # fmt: skip
                rows.append({"feed_id": pair[0], "key": pair[1], "line": rec.line,
                             "uid": rec.item["id"]})  # fmt: skip
        stmt = (insert(self.conn, seen_keys).on_conflict_do_nothing()
                .returning(seen_keys.c.feed_id, seen_keys.c.key))  # fmt: skip
        fresh = {tuple(r) for r in self.conn.execute(stmt, rows)} if rows else set()
        for row in rows:
            pair = (row["feed_id"], row["key"])
            if pair not in fresh:
                query = select(seen_keys.c.line, seen_keys.c.uid).where(
                    seen_keys.c.feed_id == pair[0], seen_keys.c.key == pair[1])
                line, uid = self.conn.execute(query).one()
                rec, feed_url = first[pair]
                raise self._claimed(rec, feed_url, pair[1], uid, f"line {line}")

    def _claimed(self, rec: Record, feed: str, key: str, uid: str, where: str) -> Exception:
        return self.fail(rec, f"sighting {feed} {key!r} is claimed by item {uid!r} too, at {where}")

    def _keys_of_others(
        self, recs: list[Record], feed_ids: dict[str, int]
    ) -> tuple[list[dict[str, Any]], int]:
        """The records without the sightings the archive gives to other items, and how many."""
        owners = _owners(self.conn, {(feed_ids[s["feed_url"]], s["key"])
                                     for rec in recs for s in rec.item["sightings"]})  # fmt: skip
        kept: list[dict[str, Any]] = []
        elsewhere = 0
        for rec in recs:
            uid, mine = rec.item["id"], []
            for s in rec.item["sightings"]:
                owner = owners.get((feed_ids[s["feed_url"]], s["key"]), uid)
                if owner == uid:
                    mine.append(s)
                    continue
                if self.total.sightings_elsewhere + elsewhere < LOGGED:
                    log.warning("import: %s: %s: sighting %s %r stays with item %r, already in "
                                "the archive", self.source, rec.where(), s["feed_url"], s["key"],
                                owner)  # fmt: skip
                elsewhere += 1
            if not mine and not _has_item(self.conn, uid):
                raise self.fail(rec, "every sighting of this item belongs to another item "
                                     "already in the archive")  # fmt: skip
            kept.append(rec.item | {"sightings": mine})
        return kept, elsewhere


def _owners(conn: Connection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """(feed id, key) -> uid of the archive's item holding that sighting; looked up feed by
    feed, so that the (feed_id, key) index serves (no index starts with the key)."""
    by_feed: defaultdict[int, list[str]] = defaultdict(list)
    for feed_id, key in sorted(pairs):
        by_feed[feed_id].append(key)
    found: dict[tuple[int, str], str] = {}
    for feed_id, keys in by_feed.items():
        for start in range(0, len(keys), CHUNK):
            query = (select(sightings.c.key, items.c.uid)
                     .join(items, items.c.id == sightings.c.item_id)
                     .where(sightings.c.feed_id == feed_id,
                            sightings.c.key.in_(keys[start : start + CHUNK])))  # fmt: skip
            found |= {(feed_id, r.key): r.uid for r in conn.execute(query)}
    return found


def _has_item(conn: Connection, uid: str) -> bool:
    return conn.execute(select(items.c.id).where(items.c.uid == uid)).first() is not None


def import_batch(
    conn: Connection, batch: list[dict[str, Any]], feed_ids: dict[str, int]
) -> ImportSummary:
    """Write prepared records whose feeds exist (``feed_ids``); feeds are counted by the caller."""
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
    searchindex.refresh(conn, [ids[uid] for uid in (*(r["id"] for r in fresh), *updated)])
    grew = grew_s | grew_r
    grown = {uid for uid, item_id in ids.items() if item_id in grew}
    updated |= {uid for uid in grown if uid in known}
    unchanged = len(known) - len(updated & known.keys())
    return ImportSummary(len(fresh), len(updated), unchanged, n_sight, n_revs)


def _feeds(conn: Connection, batch: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """Every feed the batch names, by URL; unknown ones are created inactive (never polled)."""
    first: dict[str, datetime] = {}
    for rec in batch:
        for url, seen in [(rec["feed_url"], rec["first_seen"])] + [
            (s["feed_url"], s["first_seen"]) for s in rec["sightings"]
        ]:  # fmt: skip
            first.setdefault(url, _time(seen))
    urls = sorted(first)
    found: dict[str, int] = {}
    for start in range(0, len(urls), CHUNK):
        query = select(feeds.c.url, feeds.c.id).where(feeds.c.url.in_(urls[start : start + CHUNK]))
        found |= {r.url: r.id for r in conn.execute(query)}
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
    rows = [_item_values(rec, feed_ids[rec["feed_url"]]) for rec in fresh]
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
        {"item_id": ids[rec["id"]], "seq": int(v["seq"]), "recorded_at": _time(v["recorded_at"]),
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
        "canonical_url": _canonical_key(rec), "page_canonical_url": _page_canonical(rec),
        "enclosures": rec.get("enclosures"),
        "fingerprint": _fingerprint(rec.get("title"), body),
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


def _canonical_key(rec: dict[str, Any]) -> str | None:
    """Version 1 files (no ``canonical_key``) held the key of deduplication in ``canonical_url``."""
    key: str | None = rec["canonical_key"] if "canonical_key" in rec else rec.get("canonical_url")
    return key


def _page_canonical(rec: dict[str, Any]) -> str | None:
    """The page's own canonical URL; in a version 1 file, a copy of the key for items whose page
    was read, as the 0009 migration does for an archive."""
    if "canonical_key" in rec:
        return rec.get("canonical_url")
    return rec.get("canonical_url") if (rec.get("provenance") or {}).get("fetched_at") else None


def _fingerprint(title: str | None, body: str | None) -> str | None:
    """Uncached: the poll path's cache of 4,096 (title, body) keys would hold as many bodies of
    an archive read once (8 KB items: 32 MB)."""
    return content_fingerprint.__wrapped__(title, body)


def _changed_at(rec: dict[str, Any]) -> datetime:
    return _time(rec.get("changed_at") or rec["last_seen"])


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _time_opt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
