"""The archive's read-only queries, which ``Store`` inherits: each is one short read
transaction (``Database.read``), crossing the driver-error boundary once (``guarded``).

Kept apart from ``storage/store.py`` so that the store's own module holds what changes the
archive (syncs, leases, polls, articles, imports, housekeeping) and stays readable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storage import archive, articles, captures, feeds, holders, maintenance, vitals
from storage.engine import Database, guarded, guarded_iter
from storage.identity import normalize_url
from storage.records import Capture, Entry, ExportFilter, FeedState, PendingArticle
from storage.searchindex import Backlog, backlog
from storage.tables import items as items_t
from storage.vitals import Vitals

if TYPE_CHECKING:  # the search and the web view's reads load when asked for, not for a poll
    from storage.browse import Browse
    from storage.search import SearchPage

PAGE = 500  # rows per read of a streamed listing


class Reads:
    """Read-only queries over ``self.db``."""

    db: Database

    @guarded
    def held_leases(self, now: datetime, owner: str) -> list[holders.Holding]:
        """Who else holds active feeds now, how many, until when, and whether it runs."""
        with self.db.read() as conn:
            return feeds.held(conn, now, owner)

    @guarded
    def list_feeds(self) -> list[FeedState]:
        with self.db.read() as conn:
            return feeds.listing(conn)

    @guarded
    def unpolled_since(self, since: datetime) -> dict[bool, int]:
        """Active feeds not polled since ``since``, counted by whether they are gone: one
        query on the feeds table, whatever the archive holds (``list_feeds`` counts items)."""
        with self.db.read() as conn:
            return feeds.unpolled(conn, since)

    @guarded
    def get_feed(self, url: str) -> FeedState | None:
        with self.db.read() as conn:
            found = feeds.listing(conn, url)
        return found[0] if found else None

    @guarded
    def poll_history(self, feed_id: int, limit: int = maintenance.HISTORY) -> list[dict[str, Any]]:
        """The feed's last polls, newest first: when, result, new items, error, next poll, why."""
        with self.db.read() as conn:
            return feeds.history(conn, feed_id, limit)

    @guarded
    def recent_item_rate(self, feed_id: int, now: datetime, days: float = 14) -> float | None:
        with self.db.read() as conn:
            return feeds.item_rate(conn, feed_id, now, days)

    @guarded
    def known_entries(self, feed_id: int, entries: Sequence[Entry]) -> set[str]:
        """Keys of ``entries`` the archive already holds (so their pages need no fetching)."""
        with self.db.read() as conn:
            return archive.known_entries(conn, feed_id, entries)

    @guarded
    def pending_articles(self, now: datetime, limit: int) -> list[PendingArticle]:
        """Items whose article page is due for a (first or new) fetch, oldest first."""
        with self.db.read() as conn:
            return articles.pending(conn, now, limit)

    @guarded_iter
    def iter_page_captures(
        self, feed_url: str | None, since: datetime | None
    ) -> Iterator[tuple[int, Capture]]:
        """(item id, page capture) for re-extraction, streamed a page of rows at a time."""
        after = 0
        while True:
            with self.db.read() as conn:
                batch = list(captures.page_captures(conn, feed_url, since, after, PAGE // 5))
            for _cid, item_id, cap in batch:
                yield item_id, cap
            if not batch:
                return
            after = batch[-1][0]

    @guarded
    def reextraction_basis(self, item_id: int) -> dict[str, Any] | None:
        """The article stored for an item (export-shaped), which a re-extraction compares with."""
        with self.db.read() as conn:
            found: dict[str, Any] | None = conn.execute(
                select(items_t.c.article).where(items_t.c.id == item_id)).scalar()
        return found

    @guarded
    def count_without_page(self, feed_url: str | None, since: datetime | None) -> int:
        """Items with an article but no archived page to re-extract (``captures.without_page``)."""
        with self.db.read() as conn:
            return captures.without_page(conn, feed_url, since)

    @guarded_iter
    def iter_items(self, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        """Export-shaped items by id, streamed with keyset pagination (constant memory)."""
        after = 0
        while True:
            with self.db.read() as conn:
                page, after = archive.export_page(conn, flt, after, PAGE)
            yield from page
            if len(page) < PAGE:
                return

    @guarded
    def search(
        self, query: str, *, feed_url: str | None = None, tag: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        limit: int = 20, offset: int = 0,
    ) -> SearchPage:  # fmt: skip
        """Items matching ``query`` (``storage.searchquery``'s syntax), best first; ``since`` and
        ``until`` bound the publication time (the first sighting when unknown); ``tag`` is a tag of
        a feed that carried the item. A bad query raises ``SearchSyntaxError``."""
        from storage.search import run_search

        with self.db.read() as conn:
            return run_search(conn, query, feed_url=feed_url, tag=tag, since=since,
                              until=until, limit=limit, offset=offset)  # fmt: skip

    @guarded
    def search_backlog(self) -> Backlog | None:
        """Items written before the search index and not yet indexed (None: none)."""
        with self.db.read() as conn:
            return backlog(conn)

    @guarded
    def stats(self) -> dict[str, Any]:
        with self.db.read() as conn:
            return maintenance.stats(conn)

    @guarded
    def integrity_check(self) -> list[str]:
        with self.db.read() as conn:
            return maintenance.integrity(conn)

    @guarded
    def item_id_for_url(self, url: str) -> int | None:
        """The item whose canonical URL matches ``url`` (for tools and tests)."""
        canonical = normalize_url(url)
        query = select(items_t.c.id).where(items_t.c.canonical_url == canonical).limit(1)
        with self.db.read() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    @guarded
    def vitals(self, now: datetime) -> Vitals:
        """Size, active and overdue feeds, the stalest good poll: for metrics."""
        return vitals.read(self.db, now)

    @property
    def browse(self) -> Browse:
        """The web view's and the feeds out's reads (``storage.browse``)."""
        from storage.browse import Browse

        return Browse(self.db)
