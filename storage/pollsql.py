"""The statements of the poll write path: what ``storage.poll`` reads and writes, not why.

Reads come back as rows in a stable order (by id), so the decisions made over them are the
same on SQLite and PostgreSQL; writes that wait for the end of a batch live in ``Writes``.
Nothing here decides which entry is which item: that is ``storage.poll``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, or_, select, update

from storage import captures, searchindex
from storage.bulk import insert_rows, reserve_ids, value_array
from storage.dialect import CHUNK, by_dialect, int_array, is_postgres, select_in
from storage.errors import StorageError
from storage.feedrows import log_polls, write_states
from storage.feeds import RATE_WINDOW_DAYS, item_rate, rate_of
from storage.items import ENTRY_COLUMNS
from storage.records import Entry
from storage.tables import (
    UTCDateTime,
    clean_text,
    feeds,
    sightings,
    sqlite_time,
    sqlite_when,
    utc_naive,
)
from storage.tables import items as items_t
from storage.tables import revisions as revisions_t

_NOW = bindparam("now", type_=UTCDateTime())
# FOR NO KEY UPDATE (PostgreSQL; SQLite has no row locks) lets another transaction's foreign-key
# check (FOR KEY SHARE) through: with FOR UPDATE, a poll holding its feed row and another that
# touches an item of that feed deadlock (a second update of a row in one transaction runs the
# row's foreign-key check again)
LOCK_FEEDS = by_dialect(
    lambda in_: (
        select(feeds)
        .where(in_(feeds.c.id, "values"))
        .order_by(feeds.c.id)
        .with_for_update(key_share=True)
    )
)
# the sightings that an entry of the document may be: by key, or by link (a relink), of
# several feeds (``feeds_sightings``): a superset, each feed's own picked out in Python
FEEDS_SIGHTINGS = by_dialect(
    lambda in_: (
        select(sightings)
        .where(in_(sightings.c.feed_id, "feeds"))
        .where(or_(in_(sightings.c.key, "keys"), in_(sightings.c.link, "links")))
        .order_by(sightings.c.id)
    )
)
# What a poll needs of a known entry's item: its feed and the columns an entry sets, to compare
# them. Not its article (an extracted page: tens of kilobytes of JSON to read and decode for
# every known entry of a feed that changed; ``items.refresh`` reads it when needed), nor the
# times and provenance a poll never reads.
ITEMS_BY_ID = by_dialect(lambda in_: (
    select(items_t.c.id, items_t.c.feed_id, *(items_t.c[name] for name in ENTRY_COLUMNS))
    .where(in_(items_t.c.id, "values"))
))
# items an unknown entry may be: the same canonical URL or fingerprint (a fold), or the same uid
FOLD_CANDIDATES = by_dialect(
    lambda in_: (
        select(items_t.c.id, items_t.c.uid, items_t.c.canonical_url, items_t.c.fingerprint,
               items_t.c.feed_id, items_t.c.title, items_t.c.enclosures)
        .where(
            or_(
                in_(items_t.c.canonical_url, "idents"),
                in_(items_t.c.fingerprint, "idents"),
                in_(items_t.c.uid, "uids"),
            )
        )
        .order_by(items_t.c.id)
    )
)
TOUCH_SIGHTINGS = by_dialect(
    lambda in_: update(sightings).where(in_(sightings.c.id, "values")).values(last_seen=_NOW)
)
# a new sighting changes the export: last_seen and changed_at in one update (a second update
# of a row re-runs its foreign-key check, which waits on a feed row another poll holds)
FOLD_INTO = by_dialect(
    lambda in_: (
        update(items_t).where(in_(items_t.c.id, "values")).values(last_seen=_NOW, changed_at=_NOW)
    )
)


_IDENTITY = ("uid", "canonical_url", "fingerprint")  # what a fold candidate is read by
# New items and the rows that refer to them (revisions, sightings, index rows) that a write
# waits for. SQLite: FTS5 does more work for many small statements than for one. PostgreSQL:
# the index rows held were most of a batch's memory (first pass, peak RSS: 112.9-114.5 MB at
# 256, 111.3-111.9 MB at 64, two batches in flight), and the statements cost per row there.
INDEX_ROWS = 256
PG_ROWS = 64


def _held_rows(conn: Connection) -> int:
    return PG_ROWS if is_postgres(conn) else INDEX_ROWS


@dataclass
class Writes:
    """A batch's rows that wait to be written in one statement per table.

    ``flush_rows`` before reading sightings or revisions (an item's history, its article, a
    feed's rate) or writing an item's index row (a refresh); ``flush`` before reading a feed
    row again (a feed met twice in a batch).
    """

    sightings: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    rates: list[tuple[dict[str, Any], datetime]] = field(default_factory=list)  # to recount
    polls: list[dict[str, Any]] = field(default_factory=list)
    captures: list[captures.Owned] = field(default_factory=list)
    search: list[searchindex.Doc] = field(default_factory=list)  # new items' index rows
    # The hashes of the uids, canonical URLs and fingerprints of the items the batch created,
    # which fold candidates read ahead of them (``storage.poll``) do not include (a hash, not the
    # text: a collision costs only a read; the texts would be held to the end)
    made: set[int] = field(default_factory=set)
    # New items, their ids reserved for the batch (``reserve``), inserted with the rows above
    # rather than in a statement and a read of their ids per poll
    items: list[dict[str, Any]] = field(default_factory=list)
    free_ids: list[int] = field(default_factory=list)  # reserved, not given out yet
    reserved_to: int = 0  # the largest id reserved so far (SQLite numbers from it)

    def reserve(self, conn: Connection, count: int) -> None:
        """Ids for about ``count`` new items: those the batch does not use are skipped, as a
        rolled-back insert's are."""
        ids = reserve_ids(conn, items_t, count, above=self.reserved_to)
        if ids:
            self.free_ids += ids
            self.reserved_to = max(self.reserved_to, ids[-1])

    def new_items(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Create items (``rows`` of ``items.new_row``); their ids, in order. Each row takes a
        reserved id and waits for ``flush_items``."""
        if len(self.free_ids) < len(rows):
            self.reserve(conn, len(rows) - len(self.free_ids))
        ids, self.free_ids = self.free_ids[: len(rows)], self.free_ids[len(rows) :]
        for row, item_id in zip(rows, ids, strict=True):
            row["id"] = item_id
            self.made.update(hash(row[c]) for c in _IDENTITY if row[c])
        self.items += rows
        if len(self.items) >= _held_rows(conn):  # with the rows that wait for them: less held
            self.flush_rows(conn)
        return ids

    def flush_items(self, conn: Connection) -> None:
        """Before anything reads items or writes a row that refers to a new one."""
        insert_rows(conn, items_t, self.items, keyed=True)
        self.items = []

    def index(self, conn: Connection, docs: list[searchindex.Doc]) -> None:
        """New items' index rows, written a few hundred at a time (PostgreSQL: PG_ROWS): FTS5
        does more work for many small statements than for one, and a whole batch's would hold
        their texts meanwhile."""
        self.search += docs
        if len(self.search) >= _held_rows(conn):
            self.flush_items(conn)
            searchindex.write(conn, self.search)
            self.search = []

    def flush_rows(self, conn: Connection) -> None:
        """Also before another write of the index (an item created earlier in the batch may be
        refreshed: its newer row must come last)."""
        self.flush_items(conn)
        insert_rows(conn, revisions_t, self.revisions)
        insert_rows(conn, sightings, self.sightings)
        searchindex.write(conn, self.search)
        self.revisions, self.sightings, self.search = [], [], []

    def flush(self, conn: Connection) -> None:
        self.flush_rows(conn)
        asked = [(state["feed_id"], now) for state, now in self.rates]
        for (state, _), rate in zip(self.rates, item_rates(conn, asked), strict=True):
            state["items_per_day"] = rate
        write_states(conn, self.states)
        log_polls(conn, self.polls)
        captures.add_many(conn, self.captures)
        self.states, self.rates, self.polls, self.captures = [], [], [], []


# PostgreSQL: ``feeds.item_rate`` of many feeds in one statement (a round trip per new feed's
# poll otherwise); ``i`` keeps each answer in its place
RATES = (
    "SELECT r.i, s.start, (SELECT count(*) FROM sightings AS c WHERE c.feed_id = r.feed_id "
    "AND c.first_seen > s.start AND c.first_seen >= r.since AND c.first_seen <= r.now) AS n "
    "FROM unnest(CAST(%(ids)s AS BIGINT[]), CAST(%(sinces)s AS TIMESTAMP[]), "
    "CAST(%(nows)s AS TIMESTAMP[])) WITH ORDINALITY AS r(feed_id, since, now, i) "
    "CROSS JOIN LATERAL (SELECT min(first_seen) AS start FROM sightings "
    "WHERE sightings.feed_id = r.feed_id) AS s ORDER BY r.i"
)


# SQLite: the same, the batch's (feed id, since, now) as one JSON array of triples, times in the
# text SQLite stores them as (tables.sqlite_time), so they compare as the stored ones do.
RATES_SQLITE = (
    "SELECT r.i, r.start, (SELECT count(*) FROM sightings AS c WHERE c.feed_id = r.feed_id "
    "AND c.first_seen > r.start AND c.first_seen >= r.since AND c.first_seen <= r.now) AS n "
    "FROM (SELECT q.i, q.feed_id, q.since, q.now, (SELECT min(first_seen) FROM sightings "
    "WHERE sightings.feed_id = q.feed_id) AS start FROM (SELECT CAST(key AS INTEGER) AS i, "
    "json_extract(value, '$[0]') AS feed_id, json_extract(value, '$[1]') AS since, "
    "json_extract(value, '$[2]') AS now FROM json_each(?)) AS q) AS r ORDER BY r.i"
)


def item_rates(conn: Connection, asked: Sequence[tuple[int, datetime]]) -> list[float | None]:
    """``feeds.item_rate`` over the rate window of each ``(feed id, now)``, in order: one
    statement for the batch (an unchanged pass past the hour recounts every feed's rate)."""
    if len(asked) < 2:
        return [item_rate(conn, feed_id, now, RATE_WINDOW_DAYS) for feed_id, now in asked]
    window = timedelta(days=RATE_WINDOW_DAYS)
    sinces = [now - window for _, now in asked]
    if is_postgres(conn):
        ids = int_array([int(feed_id) for feed_id, _ in asked])
        nows = value_array([utc_naive(now) for _, now in asked])
        sinces_pg = value_array([utc_naive(since) for since in sinces])
        rows = conn.exec_driver_sql(RATES, {"ids": ids, "sinces": sinces_pg, "nows": nows})
    else:
        triples = [[int(feed_id), sqlite_time(since), sqlite_time(now)]
                   for (feed_id, now), since in zip(asked, sinces, strict=True)]  # fmt: skip
        rows = conn.exec_driver_sql(RATES_SQLITE, (json.dumps(triples),))
    out: list[float | None] = []
    for (_, start, n), since, (_, now) in zip(rows.all(), sinces, asked, strict=True):
        if start is not None:
            start = sqlite_when(start) if isinstance(start, str) else start.replace(tzinfo=UTC)
        out.append(rate_of(start, int(n), since, now))
    return out


def lock_feeds(conn: Connection, feed_ids: Iterable[int]) -> dict[int, Row[Any]]:
    """The feed rows, locked in id order (one global order: no deadlock between batches)."""
    return {row.id: row for row in select_in(conn, LOCK_FEEDS, set(feed_ids))}


def lock_feed(conn: Connection, feed_id: int) -> Row[Any]:
    feed = conn.execute(LOCK_FEEDS.of(conn), {"values": [feed_id]}).first()
    if feed is None:
        raise StorageError(f"apply_poll: no feed with id {feed_id}")
    return feed


def feed_sightings(conn: Connection, feed_id: int, keys: Sequence[str],
                   entries: Sequence[Entry]) -> list[Row[Any]]:  # fmt: skip
    """This feed's sightings with one of ``keys`` or a link of ``entries`` (``keys[i]`` is
    ``entries[i]``'s), by id."""
    return feeds_sightings(conn, {feed_id: (keys, entries)})[feed_id]


def feeds_sightings(conn: Connection, wanted: Mapping[int, tuple[Sequence[str], Sequence[Entry]]]
                    ) -> dict[int, list[Row[Any]]]:  # fmt: skip
    """``feed_sightings`` of several feeds (feed id -> its keys and entries) at once: the same
    rows for each, by id, in one query per CHUNK // 2 entries of them all."""
    keys = {feed_id: set(k) for feed_id, (k, _) in wanted.items()}
    links = {feed_id: {clean_text(e.url) for e in entries if e.url}
             for feed_id, (_, entries) in wanted.items()}  # fmt: skip
    pairs = [(feed_id, key, entry.url) for feed_id, (k, entries) in wanted.items()
             for key, entry in zip(k, entries, strict=True)]  # fmt: skip
    found: dict[int, Row[Any]] = {}
    for start in range(0, len(pairs), CHUNK // 2):
        part = pairs[start : start + CHUNK // 2]
        params = {"feeds": sorted({f for f, _, _ in part}), "keys": sorted({k for _, k, _ in part}),
                  "links": sorted({url for _, _, url in part if url})}  # fmt: skip
        found.update((int(row.id), row) for row in conn.execute(FEEDS_SIGHTINGS.of(conn), params))
    out: dict[int, list[Row[Any]]] = {feed_id: [] for feed_id in wanted}
    for row_id in sorted(found):
        row = found[row_id]
        if row.feed_id in out and (row.key in keys[row.feed_id] or row.link in links[row.feed_id]):
            out[row.feed_id].append(row)
    return out


def items_by_id(conn: Connection, ids: set[int]) -> list[Row[Any]]:
    return list(select_in(conn, ITEMS_BY_ID, ids))


def fold_candidates(conn: Connection, asked: Iterable[tuple[set[str], set[str]]]) -> list[Any]:
    """Items with one of the identities or uids of each ``(identities, uids)`` query (one query
    per chunk of unknown entries), by id."""
    rows: dict[int, Any] = {}
    for wanted, uids in asked:
        params = {"idents": sorted(wanted), "uids": sorted(uids)}
        found = conn.execute(FOLD_CANDIDATES.of(conn), params)
        rows.update((int(row.id), row) for row in found)
    return [rows[i] for i in sorted(rows)]


def fold_candidates_of(conn: Connection, asked: Mapping[int, tuple[set[str], set[str]]]
                       ) -> dict[int, list[Any]]:  # fmt: skip
    """``fold_candidates`` of several feeds (feed id -> its identities and uids) at once: the
    same rows for each, by id, in one query per CHUNK identities and CHUNK uids of them all."""
    wanted = sorted(set().union(*(idents for idents, _ in asked.values())))
    uids = sorted(set().union(*(u for _, u in asked.values())))
    parts = [(set(wanted[start : start + CHUNK]), set(uids[start : start + CHUNK]))
             for start in range(0, max(len(wanted), len(uids)), CHUNK)]  # fmt: skip
    rows = fold_candidates(conn, parts)
    return {feed_id: [row for row in rows if row.canonical_url in idents
                      or row.fingerprint in idents or row.uid in u]
            for feed_id, (idents, u) in asked.items()}  # fmt: skip


def rekey_sighting(conn: Connection, sighting_id: int, key: str) -> None:
    """A relink: the feed changed the entry's guid, its sighting answers to the new key."""
    conn.execute(update(sightings).where(sightings.c.id == sighting_id).values(key=key))


def relabel_sighting(conn: Connection, sighting_id: int, guid: str | None,
                     link: str | None) -> None:  # fmt: skip
    """The entry under a known key now says another guid or link: the sighting follows it."""
    stmt = update(sightings).where(sightings.c.id == sighting_id)
    conn.execute(stmt.values(guid=guid, link=link))


def touch(conn: Connection, now: datetime, seen_sightings: set[int],
          folded_items: set[int]) -> None:  # fmt: skip
    """``last_seen`` of the sightings the document named again; ``last_seen`` and ``changed_at``
    of items folded into (a new sighting changes the export).

    An item seen again unchanged keeps its row: its ``last_seen`` is read as the latest of its
    own and its sightings' (``archive``). Updating it there rewrote the whole row on SQLite, its
    article's overflow pages included, for every known entry of every feed that changed."""
    for stmt, ids in ((TOUCH_SIGHTINGS, seen_sightings), (FOLD_INTO, folded_items)):
        ordered = sorted(ids)
        for start in range(0, len(ordered), CHUNK):
            conn.execute(stmt.of(conn), {"values": ordered[start : start + CHUNK], "now": now})
