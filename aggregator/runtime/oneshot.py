"""``poll --once``: claim every active feed now, poll them, then fetch the pages they brought.

Feeds another live process holds are skipped and named; a vanished archive stops the poll. The
work of each phase is run by :class:`.dealing.Dealer` (here, or with helper processes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aggregator.config import Settings
from aggregator.runtime.dealing import Dealer, Progress
from aggregator.runtime.worker import (
    Totals,
    Worker,
    claim_articles,
    database_gone,
    make_owner,
    open_context,
    utcnow,
)
from storage import holders
from storage.dbfile import DatabaseGone
from storage.seam import StorageType

log = logging.getLogger(__name__)

# Far enough ahead that every active feed is due: poll --once polls them all.
EVERY_FEED = timedelta(days=36500)


def _no_progress(done: int, total: int) -> None:
    pass


class OneShot:
    """One poll of every feed; ``poll_once`` may run again on the same object (the helper
    processes, if any, are kept until ``close``)."""

    def __init__(self, settings: Settings, store: StorageType, *,
                 clock: Callable[[], datetime] = utcnow) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.clock = clock
        self.owner = make_owner()
        self.totals = Totals()
        self.dealer = Dealer(settings, self.owner)
        self.fatal: DatabaseGone | None = None  # the archive's file vanished: stop, exit 3
        self.held: list[holders.Holding] = []  # feeds skipped: other processes hold them

    async def poll_once(self, progress: Progress = _no_progress) -> Totals:
        """Poll every active feed once, now, then fetch the articles they brought. Feeds that a
        live process holds are skipped (``held``); a vanished archive stops it (``fatal``)."""
        await asyncio.to_thread(self.store.hold, self.owner)
        async with open_context(self.settings, self.store, clock=self.clock,
                                owner=self.owner) as ctx:  # fmt: skip
            worker = Worker(ctx, self.settings, self.totals)
            me = asyncio.current_task()
            assert me is not None
            watch = asyncio.create_task(self._watch_database(me))
            try:
                await self._poll_all(worker, progress)
            except asyncio.CancelledError:
                if self.fatal is None:
                    raise
                me.uncancel()  # our own watch stopped the work, not an outside cancel
                await worker.drain(0)
            finally:
                watch.cancel()
        if self.fatal is not None:
            raise self.fatal
        return self.totals

    async def _poll_all(self, worker: Worker, progress: Progress) -> None:
        now = self.clock()
        feeds = await asyncio.to_thread(self.store.claim_due, now, 1_000_000, worker.ctx.owner,
                                        self.settings.service.lease, now + EVERY_FEED)
        self.held = await asyncio.to_thread(self.store.held_leases, now, worker.ctx.owner)
        await self.dealer.phase(worker, feeds, worker.start_poll, progress)
        # With helpers, a phase deals a whole batch: sized by this process's free slots
        # alone, it held two pages and the helpers had almost nothing to fetch.
        many = self.settings.service.processes > 1
        batch = self.settings.service.article_batch if many else None
        while pending := await claim_articles(worker, self.clock(), batch):
            await self.dealer.phase(worker, pending, worker.start_article, progress)

    async def _watch_database(self, work: asyncio.Task[Any]) -> None:
        """The one-shot poll's tick: the first check that finds the archive's file gone
        cancels the work."""
        while (gone := database_gone(self.store)) is None:
            await asyncio.sleep(self.settings.service.tick)
        self.fatal = gone
        log.critical("%s", gone)
        work.cancel()

    def skipped_lines(self) -> list[str]:
        """The feeds left to the processes that hold them, one line per holder: a live one, or
        one whose death cannot be told from here (its lease frees them)."""
        return [f"skipped {h.feeds} feed{'s' * (h.feeds != 1)} held by "
                f"{holders.describe(h.owner)} ("
                + ("a live process)" if h.alive else f"lease until {h.until:%Y-%m-%d %H:%M}Z)")
                for h in self.held]  # fmt: skip

    def close(self) -> None:
        """Stop the helper processes, if the poll started any."""
        self.dealer.close()
