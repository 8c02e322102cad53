"""What the web view and the feeds out read (issue 16): pages of a feed's items, one item whole,
its captures and revisions, the newest items of a tag. Reads only; no HTML, no HTTP here.

``Browse`` crosses the driver-error boundary once per method, as ``Store`` does; it is handed
out by ``Store.browse`` and reads through the store's own (possibly read-only) database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, select

from storage.archive import export_dicts
from storage.captures import to_capture
from storage.engine import Database, guarded, guarded_iter
from storage.feeds import to_state
from storage.records import Capture, ExportFilter, FeedState
from storage.tables import blobs, captures, feeds, items, revisions, sightings

CAPTURE_PAGE = 100  # captures per read when streaming them out (a WARC export)


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One item in a feed's listing."""

    id: int
    title: str | None
    url: str | None
    published: datetime | None
    seen: datetime  # when this feed first carried it
    article_status: str


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """A capture's metadata, without its body."""

    id: int
    kind: str
    url: str
    final_url: str
    status: int
    fetched_at: datetime
    raw_size: int
    content_type: str | None


@dataclass(frozen=True, slots=True)
class ItemView:
    """One item as the view shows it: the export's shape, plus its row id and captures."""

    id: int
    feed_id: int
    record: dict[str, Any]  # export-shaped: sightings, revisions, article, provenance
    captures: list[CaptureLine]


class Browse:
    """Read-only questions about the archive, each one short read transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @guarded
    def feed(self, feed_id: int) -> FeedState | None:
        with self.db.read() as conn:
            row = conn.execute(select(feeds).where(feeds.c.id == feed_id)).first()
            if row is None:
                return None
            count = select(func.count()).where(sightings.c.feed_id == feed_id)
            return to_state(row, int(conn.execute(count).scalar() or 0))

    @guarded
    def feed_items(self, feed_id: int, offset: int, limit: int) -> tuple[list[ItemLine], int]:
        """The items ``feed_id`` carried, newest sighting first, and how many there are."""
        query = (
            select(items.c.id, items.c.title, items.c.url, items.c.published,
                   sightings.c.first_seen, items.c.article_status)
            .join(sightings, sightings.c.item_id == items.c.id)
            .where(sightings.c.feed_id == feed_id)
            .order_by(sightings.c.first_seen.desc(), sightings.c.id.desc())  # the index's order
            .offset(offset).limit(limit)
        )  # fmt: skip
        total = select(func.count()).where(sightings.c.feed_id == feed_id)
        with self.db.read() as conn:
            lines = [ItemLine(*row) for row in conn.execute(query)]
            return lines, int(conn.execute(total).scalar() or 0)

    @guarded
    def item(self, item_id: int) -> ItemView | None:
        with self.db.read() as conn:
            row = conn.execute(_with_feed_url(select(items)).where(items.c.id == item_id)).first()
            if row is None:
                return None
            record = export_dicts(conn, [row])[0]
            return ItemView(row.id, row.feed_id, record, _capture_lines(conn, item_id))

    @guarded
    def capture(self, capture_id: int) -> Capture | None:
        query = (
            select(captures, blobs.c.codec, blobs.c.body)
            .join(blobs, blobs.c.sha256 == captures.c.blob_sha256)
            .where(captures.c.id == capture_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_capture(row._mapping)

    @guarded
    def revisions(self, item_id: int) -> list[dict[str, Any]]:
        """The item's stored versions, oldest first (title, summary, text, when)."""
        query = select(revisions).where(revisions.c.item_id == item_id).order_by(revisions.c.seq)
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    @guarded
    def newest(self, feed_ids: list[int] | None, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` items added or changed last (of ``feed_ids``' feeds, or all),
        export-shaped, newest first: what a feed out carries (``changed_at`` is indexed)."""
        query = _with_feed_url(select(items)).order_by(items.c.changed_at.desc(),
                                                       items.c.id.desc()).limit(limit)
        if feed_ids is not None:  # walk the index newest first, keep those the feeds carried
            carried = exists().where(sightings.c.item_id == items.c.id,
                                     sightings.c.feed_id.in_(feed_ids))  # fmt: skip
            query = query.where(carried)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            return export_dicts(conn, rows) if rows else []

    @guarded
    def feed_ids(self) -> dict[str, int]:
        """Every feed's id by its URL (links to a feed's page), without counting its items."""
        with self.db.read() as conn:
            return {row.url: row.id for row in conn.execute(select(feeds.c.id, feeds.c.url))}

    @guarded
    def tagged_feeds(self, tag: str) -> list[int]:
        """The feeds whose configuration gives them ``tag`` (tags are a JSON list: read here)."""
        with self.db.read() as conn:
            rows = conn.execute(select(feeds.c.id, feeds.c.tags)).all()
        return [row.id for row in rows if tag in (row.tags or ())]

    @guarded
    def tags(self) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(select(feeds.c.tags)).scalars().all()
        return sorted({str(tag) for tags in rows for tag in (tags or ())})

    @guarded_iter
    def iter_captures(self, flt: ExportFilter) -> Iterator[tuple[int, Capture]]:
        """Every capture (feed documents and pages) ``flt`` selects by fetch time and feed, by
        id, streamed a page at a time: a WARC export's input."""
        after = 0
        while True:
            with self.db.read() as conn:
                batch = _captures_after(conn, flt, after)
            yield from batch
            if len(batch) < CAPTURE_PAGE:
                return
            after = batch[-1][0]


def _with_feed_url(query: Any) -> Any:
    return query.add_columns(feeds.c.url.label("feed_url")).join(
        feeds, feeds.c.id == items.c.feed_id)


def _capture_lines(conn: Connection, item_id: int) -> list[CaptureLine]:
    query = (
        select(captures.c.id, captures.c.kind, captures.c.url, captures.c.final_url,
               captures.c.status, captures.c.fetched_at, blobs.c.raw_size, captures.c.headers)
        .join(blobs, blobs.c.sha256 == captures.c.blob_sha256)
        .where(captures.c.item_id == item_id)
        .order_by(captures.c.fetched_at, captures.c.id)
    )  # fmt: skip
    return [CaptureLine(*row[:7], content_type=_header(row.headers, "content-type"))
            for row in conn.execute(query)]  # fmt: skip


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if str(key).lower() == name:
            return str(value)
    return None


def _captures_after(conn: Connection, flt: ExportFilter, after: int) -> list[tuple[int, Capture]]:
    query = (
        select(captures, blobs.c.codec, blobs.c.body)
        .join(blobs, blobs.c.sha256 == captures.c.blob_sha256)
        .where(captures.c.id > after)
        .order_by(captures.c.id)
        .limit(CAPTURE_PAGE)
    )
    if flt.since is not None:
        query = query.where(captures.c.fetched_at >= flt.since)
    if flt.until is not None:
        query = query.where(captures.c.fetched_at < flt.until)
    feed_ids = _filter_feeds(conn, flt)
    if feed_ids is not None:
        carried = select(sightings.c.item_id).where(sightings.c.feed_id.in_(feed_ids))
        query = query.where(captures.c.feed_id.in_(feed_ids) | captures.c.item_id.in_(carried))
    return [(row.id, to_capture(row._mapping)) for row in conn.execute(query)]


def _filter_feeds(conn: Connection, flt: ExportFilter) -> list[int] | None:
    """The feeds ``flt`` names (by URL, by ids, or both: their intersection); None for all."""
    found: list[int] | None = None if flt.feed_ids is None else list(flt.feed_ids)
    if flt.feed_url is not None:
        by_url = conn.execute(select(feeds.c.id).where(feeds.c.url == flt.feed_url)).scalars()
        ids = [int(i) for i in by_url]
        found = ids if found is None else [i for i in found if i in ids]
    return found
