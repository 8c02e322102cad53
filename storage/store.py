"""``Store``: the archive's one public face; each method is one short transaction.

Methods mirror the CLI and the service's needs and delegate to the module that owns the
concern (feeds, poll, items, archive, maintenance). Every method crosses the driver-error
boundary once (``guarded``): callers see ``StorageError`` and its subclasses, never a driver
exception, and nothing is swallowed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from storage import articles, feeds, holders, items, maintenance, planner, poll, vitals
from storage.dburl import Timeouts
from storage.engine import (
    Database,
    boundary,
    describe,
    describe_or_not,
    guarded,
    migrate,
    require_head,
    require_sqlite_file,
)
from storage.errors import StorageError
from storage.importcheck import Record
from storage.reads import Reads
from storage.records import (
    ArticleResult,
    FeedConfig,
    FeedState,
    PendingArticle,
    PollResult,
    PollSummary,
)
from storage.searchindex import Backlog, reindex
from storage.tables import items as items_t
from storage.turn import WriteTurn

if TYPE_CHECKING:
    from storage.importer import ImportSummary

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """``ImportSummary`` stays importable from here; ``storage.importer`` loads on first use."""
    if name == "ImportSummary":
        from storage.importer import ImportSummary

        return ImportSummary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_storage_error(exc: Exception, what: str) -> StorageError:
    """Ours as they are; anything else (a bug met on one hostile result) named and chained."""
    if isinstance(exc, StorageError):
        return exc
    error = StorageError(f"{what} failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _report_freed(freed: dict[str, int], what: str) -> None:
    for owner, count in freed.items():
        log.warning("lease: freed %d %s held by %s, which is no longer running",
                    count, what, holders.describe(owner))  # fmt: skip


class Store(Reads):
    """The archive behind a SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock: holders.HolderLock | None = None  # PostgreSQL: this process's holder lock
        self.leases_taken_over = 0  # feeds claimed from a dead or expired holder (metrics)
        self._analyzed = db.engine.dialect.name != "postgresql"  # see ``_give_statistics``

    @classmethod
    def open(
        cls, url: str, timeouts: Timeouts | None = None, *, create: bool = True,
        upgrade: bool = True, read_only: bool = False,
    ) -> Store:  # fmt: skip
        """Connect and bring the schema to head (``upgrade=False``: refuse one not at head, a
        newer one always). ``create=False`` (read-only commands) refuses a missing SQLite file
        or an empty database rather than create an archive nobody asked for (issue 13).
        ``read_only`` (the web view, issue 16) also opens connections that refuse every write,
        and needs the schema at head already."""
        with boundary(f"open {describe_or_not(url)}"):
            if not create or read_only:
                require_sqlite_file(url)
            db = Database(url, timeouts, read_only=read_only)
            try:
                if read_only:
                    require_head(db)
                else:
                    migrate(db, create=create, upgrade=upgrade)
                if db.watch is not None:
                    db.watch.remember()
            except BaseException:
                db.dispose()
                raise
            return cls(db)

    @property
    def url(self) -> str:
        return self.db.url

    def describe(self) -> str:
        """The database URL without its password, for logs."""
        return describe(self.db.url)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- feeds and schedule --------------------------------------------------------------

    @guarded
    def sync_feeds(self, configs: Sequence[FeedConfig], now: datetime,
                   allow_removal: bool = True) -> None:  # fmt: skip
        """Make the archive's feeds the configured ones (``feeds.sync``: the others go inactive;
        most of them at once only with ``allow_removal``)."""
        with self.db.write() as conn:
            feeds.sync(conn, configs, now, allow_removal)

    @guarded
    def hold(self, owner: str) -> None:
        """Declare this process the live holder of ``owner``'s leases until ``close``.

        On PostgreSQL a session advisory lock says so to every instance (it dies with this
        process's connection); on SQLite the owner's pid and start time are enough."""
        if self.db.engine.dialect.name != "postgresql":
            return
        if self._lock is not None and self._lock.owner != owner:
            self._lock.close()
            self._lock = None
        if self._lock is None:
            self._lock = holders.HolderLock(self.db.engine, owner)
        else:
            self._lock.ensure()

    def check_database(self) -> None:
        """Raise ``DatabaseGone`` if the SQLite file was deleted or replaced under us."""
        self.db.check_file()

    @guarded
    def claim_due(
        self, now: datetime, limit: int, owner: str, lease_seconds: float,
        due_by: datetime | None = None,
    ) -> list[FeedState]:  # fmt: skip
        """Lease up to ``limit`` feeds due by ``due_by`` (default ``now``) to ``owner``; the
        leases of holders known dead (``storage.holders``) are freed first."""
        if self._lock is not None:
            self._lock.ensure()
        with self.db.write() as conn:
            freed = feeds.free_dead(conn, now)
            claimed, expired = feeds.claim(conn, now, limit, owner, lease_seconds, due_by or now)
        _report_freed(freed, "feeds")
        self.leases_taken_over += sum(freed.values()) + expired
        return claimed

    @guarded
    def release(self, feed_id: int, owner: str) -> None:
        with self.db.write() as conn:
            feeds.release(conn, feed_id, owner)

    @guarded
    def sweep_leases(self, now: datetime) -> int:
        with self.db.write() as conn:
            return feeds.sweep(conn, now)

    # -- polls ---------------------------------------------------------------------------

    @guarded
    def apply_poll(self, result: PollResult) -> PollSummary:
        with self.db.write() as conn:
            return poll.apply_one(conn, result)

    def prepare_polls(self, results: Sequence[PollResult]) -> None:
        """Do the pure part of writing ``results`` ahead of ``apply_polls`` (identity keys,
        hashes), so that a SQLite write lock is held for database work only. Optional."""
        poll.prepare(results)

    def apply_polls(self, results: Sequence[PollResult]) -> list[PollSummary | StorageError]:
        """Write polls of several feeds in one transaction (group commit); never raises.

        Slot ``i`` holds what ``apply_poll(results[i])`` would have returned or raised: each
        result is still all-or-nothing, a lost lease (``LeaseLost``) loses only its own slot, and
        replaying an applied result is a no-op. When the batch fails for another reason it is
        rolled back and its results retried one transaction each, so one bad feed cannot sink
        the others. A database that cannot be reached gives every slot its error.
        """
        if not results:
            return []
        began = False
        try:
            with boundary("apply_polls"), self.db.write() as conn:
                began = True
                done: list[PollSummary | StorageError] = list(poll.apply_batch(conn, results))
            self._give_statistics(done)
            return done
        except Exception as exc:  # isolated below, or returned in every slot
            if not began:
                return [_as_storage_error(exc, "apply_polls")] * len(results)
            log.warning("apply_polls: a batch of %d failed (%s); retrying one by one",
                        len(results), _as_storage_error(exc, "apply_polls"))  # fmt: skip
        out: list[PollSummary | StorageError] = []
        for result in results:
            began = False
            try:
                with boundary("apply_poll"), self.db.write() as conn:
                    began = True
                    out.append(poll.apply_one(conn, result))
            except Exception as exc:  # it goes into this result's slot
                out.append(_as_storage_error(exc, f"apply_poll of feed {result.feed_id}"))
                if not began:  # the database is out of reach: the rest would fail alike
                    return out + [out[-1]] * (len(results) - len(out))
        return out

    def _give_statistics(self, done: Sequence[PollSummary | StorageError]) -> None:
        """After the first batch that created items, PostgreSQL's planner gets the statistics
        it lacks (``storage.planner``); a failure costs only speed: logged, not raised."""
        if self._analyzed or not any(isinstance(s, PollSummary) and s.new_items for s in done):
            return
        self._analyzed = True
        try:
            with boundary("analyze"), self.db.write() as conn:
                planner.analyze_unknown(conn)
        except StorageError as exc:
            log.warning("%s", exc)

    # -- articles ------------------------------------------------------------------------

    @guarded
    def claim_articles(
        self, now: datetime, limit: int, owner: str, lease_seconds: float
    ) -> list[PendingArticle]:
        """Like ``pending_articles``, but each is held back for ``lease_seconds`` (so two workers,
        or two rounds of one, never fetch the same page); ``apply_article`` settles it."""
        with self.db.write() as conn:
            _report_freed(articles.free_dead(conn, now), "article pages")
            return articles.claim(conn, now, limit, lease_seconds, owner)

    @guarded
    def release_articles(self, item_ids: list[int], owner: str, now: datetime) -> int:
        """Hand back ``owner``'s claims of these items' pages, unfetched: due again now."""
        with self.db.write() as conn:
            return articles.release(conn, item_ids, owner, now)

    @guarded
    def apply_article(self, item_id: int, result: ArticleResult, now: datetime) -> bool:
        """Store an article outcome; True when the article changed (a new revision)."""
        with self.db.write() as conn:
            row = conn.execute(select(items_t.c.feed_id).where(items_t.c.id == item_id)).first()
            if row is None:
                raise StorageError(f"apply_article: no item with id {item_id}")
            articles.settle(conn, item_id)
            return items.attach_article(conn, item_id, row.feed_id, result, now)

    # -- export, import, housekeeping ----------------------------------------------------

    @guarded
    def import_items(
        self, records: Iterable[dict[str, Any]], source: str = "import"
    ) -> ImportSummary:
        """Load export items (numbered from 1) in one transaction; importing twice == once."""
        return self.import_records(
            (Record(i + 1, i, item) for i, item in enumerate(records)), source
        )

    def import_file(self, path: Path) -> ImportSummary:
        """Load an export file: checked whole first, then written in one transaction."""
        from storage.export import read_records  # the file format's module

        return self.import_records(read_records(path), str(path))

    @guarded
    def import_records(
        self, records: Iterable[Record], source: str
    ) -> ImportSummary:
        """All or nothing. The first batch is taken before the transaction opens: a file's
        reader checks the whole file then, so a bad file never holds the write lock."""
        from storage import importer  # its temporary tables load the PostgreSQL dialect

        chunks = importer.batches(records)
        first = next(chunks, None)
        if first is None:
            return importer.ImportSummary()
        with self.db.write() as conn:
            run = importer.ImportRun(conn, source)
            try:
                for batch in itertools.chain([first], chunks):
                    run.add(batch)
            except (SQLAlchemyError, ValueError, OverflowError) as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise StorageError(f"import of {source} failed at {run.lines}, "
                                   f"nothing imported: {detail}") from exc  # fmt: skip
            return run.finish()

    @guarded
    def reindex_search(self, batch: int, *, restart: bool = False) -> tuple[int, Backlog | None]:
        """Index the next ``batch`` items of the backlog in one transaction (``restart``: put
        every item in it first); how many were indexed, and what is left."""
        with self.db.write() as conn:
            return reindex(conn, batch, restart=restart)

    @guarded
    def apply_retention(self, now: datetime) -> int:
        """Retention of items (per feed, from the config) and of the poll history."""
        with self.db.write() as conn:
            maintenance.prune_polls(conn)
            return maintenance.retention(conn, now)

    @property
    def write_turn(self) -> WriteTurn | None:
        """SQLite's turn among the writers of every process (``storage.turn``), for a caller that
        must not block while it waits; None where the database arbitrates writers (PostgreSQL)."""
        return self.db.turn

    @guarded
    def probe(self, timeout: float) -> None:
        """Raise ``StorageError`` unless a write transaction could start within ``timeout``."""
        vitals.probe(self.db, timeout)

