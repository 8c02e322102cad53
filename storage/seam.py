"""``StorageType``: what the running archiver needs of a store, as a typed Protocol (issue 12).

``aggregator.runtime`` types against this, never against the concrete ``storage.store.Store``:
the CLI opens the store and hands it in; a helper process opens its own with ``open_store``.
Another backend, or a fake in a test, need only provide these methods. ``open_store`` is typed
to return this Protocol, so mypy fails the build when ``Store`` and the seam drift apart.
Only the runtime's methods belong here; the CLI's other commands use ``Store`` itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storage.dburl import Timeouts
    from storage.errors import StorageError
    from storage.holders import Holding
    from storage.records import (
        ArticleResult,
        FeedConfig,
        FeedState,
        PendingArticle,
        PollResult,
        PollSummary,
    )
    from storage.turn import WriteTurn
    from storage.vitals import Vitals


class StorageType(Protocol):
    """The store as the daemon, the one-shot poll, the worker and the writer use it. Every
    method is one short transaction and raises only ``StorageError`` (``apply_polls``: none)."""

    def describe(self) -> str:
        """The database without its password, for logs."""

    def hold(self, owner: str) -> None:
        """Declare this process the live holder of ``owner``'s leases (``storage.holders``)."""

    def check_database(self) -> None:
        """Raise ``DatabaseGone`` if the archive's file was deleted or replaced under us."""

    # -- feeds: leases ----------------------------------------------------------------------

    def claim_due(
        self, now: datetime, limit: int, owner: str, lease_seconds: float,
        due_by: datetime | None = None,
    ) -> list[FeedState]:  # fmt: skip
        """Lease up to ``limit`` feeds due by ``due_by`` (default ``now``) to ``owner``."""

    def held_leases(self, now: datetime, owner: str) -> list[Holding]:
        """Who else holds active feeds now, how many, until when, and whether it runs."""

    def release(self, feed_id: int, owner: str) -> None:
        """Give back ``owner``'s lease of the feed, unpolled."""

    def sweep_leases(self, now: datetime) -> int:
        """Free expired leases; how many."""

    # -- polls: group commit (``runtime.writer``) --------------------------------------------

    @property
    def write_turn(self) -> WriteTurn | None:
        """SQLite's turn among writing processes; None where the database arbitrates."""

    def prepare_polls(self, results: Sequence[PollResult]) -> None:
        """The pure part of writing ``results``, done ahead of ``apply_polls`` (optional)."""

    def apply_polls(self, results: Sequence[PollResult]) -> list[PollSummary | StorageError]:
        """Write several polls in one transaction; slot ``i`` is result ``i``'s summary or error."""

    # -- article pages ------------------------------------------------------------------------

    def claim_articles(
        self, now: datetime, limit: int, owner: str, lease_seconds: float
    ) -> list[PendingArticle]:
        """Lease up to ``limit`` pages due for a fetch to ``owner``."""

    def release_articles(self, item_ids: list[int], owner: str, now: datetime) -> int:
        """Hand back ``owner``'s claims of these items' pages, unfetched: due again now."""

    def apply_article(self, item_id: int, result: ArticleResult, now: datetime) -> bool:
        """Store an article outcome; True when the article changed (a new revision)."""

    # -- housekeeping --------------------------------------------------------------------------

    def apply_retention(self, now: datetime) -> int:
        """Remove what the retention settings no longer keep; how many items."""

    # -- configuration reload, health and metrics (``runtime.daemon``, ``runtime.monitor``) ------

    # Feeds this process claimed from a holder that died or let its lease expire, so far.
    leases_taken_over: int

    def sync_feeds(self, configs: Sequence[FeedConfig], now: datetime) -> None:
        """Upsert the configured feeds; the others go inactive, their archive kept."""

    def probe(self, timeout: float) -> None:
        """Raise ``StorageError`` unless a write transaction could start within ``timeout``."""

    def vitals(self, now: datetime) -> Vitals:
        """Size, active and overdue feeds, the stalest good poll."""


@contextlib.contextmanager
def open_store(url: str, timeouts: Timeouts | None = None) -> Iterator[StorageType]:
    """The store at ``url``, closed on exit: how a helper process (``runtime.processes``) gets
    its own. The concrete class loads here, on first use, not when the seam is imported."""
    from storage.store import Store

    with Store.open(url, timeouts) as store:
        yield store
