"""The long-running service and the one-shot poll: wiring, scheduling and shutdown, no feed logic.

The schedule lives in the database; APScheduler only ticks. Each tick claims the feeds that are due
(with a lease, so several instances can share one PostgreSQL) and the articles still to fetch,
and hands them to a bounded pool of asyncio tasks that run :func:`.pipeline.poll_feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.config import Settings
from aggregator.errors import ConfigError, StorageError
from aggregator.runtime.monitor import Monitor
from aggregator.runtime.processes import (
    RESTART_DELAY,
    Crew,
    ServeHelpers,
    next_hand,
    unblock_reloads,
)
from aggregator.runtime.reload import Reloader
from aggregator.runtime.worker import Totals, Worker, make_owner, open_context, utcnow
from storage import holders
from storage.dbfile import DatabaseGone
from storage.records import FeedState, PendingArticle
from storage.store import Store

log = logging.getLogger(__name__)

# How long a stopping service lets in-flight polls finish before abandoning them.
SHUTDOWN_GRACE = 10.0


@contextlib.contextmanager
def _logged(job: str) -> Iterator[None]:
    """Housekeeping that fails is retried at its next run; one line says why. Cancelled by the
    scheduler's shutdown, its statement still finishes in its thread: nothing to report."""
    try:
        yield
    except StorageError as exc:
        log.warning("%s: %s", job, exc)
    except asyncio.CancelledError:
        log.debug("%s: cancelled by shutdown", job)


class Service:
    """The background service: ``run`` until ``stop`` is set."""

    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], datetime] = utcnow,
                 housekeeping: bool = True, config_path: Path | None = None):  # fmt: skip
        self.settings = settings
        self.store = store
        self.clock = clock
        # Helper instances (service.processes) leave lease sweeps and retention to the main one.
        self.housekeeping = housekeeping
        self.owner = make_owner()
        self._crew: Crew | None = None  # poll_once's helper processes, kept until close()
        self.totals = Totals()
        # A claim runs in a thread and commits even if the job awaiting it is cancelled (the
        # scheduler's shutdown cancels running jobs), so it runs as its own task that shutdown
        # waits for: its feeds then get polled or released. No claim starts once stopping.
        self._claiming: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop = asyncio.Event()  # run()'s, once it runs
        self.fatal: DatabaseGone | None = None  # the archive's file vanished: stop, exit 3
        self.held: list[holders.Holding] = []  # poll_once: feeds skipped, others hold them
        # run(): reloads of the configuration file (SIGHUP, or its content changed)
        self.config_path = config_path
        self.reloader = Reloader(config_path, settings) if config_path is not None else None
        self.monitor: Monitor | None = None  # run()'s metrics, endpoint and systemd link
        self._helpers: ServeHelpers | None = None

    async def run(self, stop: asyncio.Event) -> Totals:
        self.monitor = monitor = Monitor(self.settings, self.store, main=self.housekeeping)
        try:
            return await self._run(stop, monitor)
        finally:
            monitor.close()

    async def _run(self, stop: asyncio.Event, monitor: Monitor) -> Totals:
        serve = functools.partial(serve_helper, config_path=self.config_path)
        helpers = (ServeHelpers(self.settings, self.settings.service.processes - 1, serve)
                   if self.housekeeping and self.settings.service.processes > 1 else None)
        self._stop = stop
        self._helpers = helpers
        await asyncio.to_thread(self.store.hold, self.owner)
        async with open_context(self.settings, self.store, clock=self.clock,
                                owner=self.owner) as ctx:  # fmt: skip
            worker = Worker(ctx, self.settings, self.totals, monitor.recorder)
            await monitor.start()
            scheduler = self._scheduler(worker, helpers)
            scheduler.start()
            if self.reloader is not None:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reloader.request)
                unblock_reloads()
            if helpers is not None:
                helpers.start()
            log.info("service started as %s: %d feeds, database %s", ctx.owner,
                     len(worker.configs), self.store.describe())
            try:
                await stop.wait()
            finally:
                # No new claims; a claim in flight lands in worker.tasks, and its job ends
                # before the scheduler's shutdown could cancel it.
                self._stopping = True
                await monitor.stop()
                if self._claiming is not None:
                    await asyncio.wait([self._claiming])
                scheduler.shutdown(wait=False)
                grace = 0.0 if self.fatal else SHUTDOWN_GRACE  # no write could land anyway
                log.info("stopping: no new polls; waiting up to %.0fs for %d in flight",
                         grace, len(worker.tasks))
                stopped = (asyncio.create_task(asyncio.to_thread(helpers.stop))
                           if helpers is not None else None)
                await worker.drain(grace)
                if stopped is not None:
                    await stopped
        if self.fatal is not None:
            raise self.fatal
        return self.totals

    def _scheduler(self, worker: Worker, helpers: ServeHelpers | None) -> AsyncIOScheduler:
        tick = self.settings.service.tick
        scheduler = AsyncIOScheduler(timezone=UTC)
        every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, int(tick))}
        scheduler.add_job(self._dispatch, "interval", args=[worker, scheduler], seconds=tick,
                          next_run_time=self.clock(), id="dispatch", **every)
        if self.housekeeping:
            scheduler.add_job(self._sweep, "interval", seconds=self.settings.service.lease / 2,
                              id="sweep-leases", **every)
            scheduler.add_job(self._retention, "interval", hours=1, id="retention", **every)
        if helpers is not None:
            scheduler.add_job(self._check_helpers, "interval", args=[helpers],
                              seconds=RESTART_DELAY, id="helpers", **every)
        return scheduler

    def _check_helpers(self, helpers: ServeHelpers) -> None:
        if self._database_ok():  # a helper restarted now would make a new, empty archive
            helpers.check()

    def _database_ok(self) -> bool:
        """False once the archive's file was deleted or replaced: then say so and stop."""
        try:
            self.store.check_database()
        except DatabaseGone as exc:
            if self.fatal is None:
                self.fatal = exc
                log.critical("%s", exc)
                self._stop.set()
            return False
        return True

    async def _dispatch(self, worker: Worker, scheduler: AsyncIOScheduler) -> None:
        """Claim what is due, up to the free capacity; polls come before article fetches."""
        if self._stopping or (self._claiming is not None and not self._claiming.done()):
            return
        if not self._database_ok():
            return
        await self._maybe_reload(worker, scheduler)
        self._claiming = asyncio.create_task(self._claim_and_start(worker))
        try:
            await asyncio.shield(self._claiming)
        except asyncio.CancelledError:  # shutdown: run() waits for the claim itself
            log.debug("dispatch: cancelled by shutdown")
            return
        if self.monitor is not None:
            self.monitor.ticked()

    async def _maybe_reload(self, worker: Worker, scheduler: AsyncIOScheduler) -> None:
        """Reload the configuration if asked (SIGHUP) or the file changed; a file that does not
        validate is refused whole, with its errors logged, and the running one stays."""
        if self.reloader is None or self.monitor is None or not self.reloader.due():
            return
        self.monitor.reloading()
        try:
            reloaded = await asyncio.to_thread(self.reloader.load)
            if self.housekeeping:  # added feeds due now, removed ones inactive: archive kept
                await asyncio.to_thread(self.store.sync_feeds, reloaded.settings.feed_configs(),
                                        self.clock())  # fmt: skip
        except (ConfigError, StorageError) as exc:
            log.error("reload refused, the running configuration stays: %s", exc)
            self.reloader.running = self.settings
            if isinstance(exc, StorageError):  # the file was fine: try again next tick
                self.reloader.request()
            self.monitor.reloaded(False)
            return
        self._adopt(reloaded.settings, worker, scheduler)
        for key in reloaded.kept:
            log.warning("reload: %s changed; it takes effect at the next restart", key)
        log.info("configuration reloaded: %s", reloaded.summary)
        self.monitor.reloaded(True)
        if self._helpers is not None:
            self._helpers.settings = self.settings  # a helper restarted later starts with it
            self._helpers.signal(signal.SIGHUP)

    def _adopt(self, settings: Settings, worker: Worker, scheduler: AsyncIOScheduler) -> None:
        """New polls use the new settings: per-feed options, defaults, site rules, service
        knobs (a new tick reschedules the dispatch job)."""
        tick = settings.service.tick
        if tick != self.settings.service.tick:
            scheduler.reschedule_job("dispatch", trigger="interval", seconds=tick)
            if self.monitor is not None:
                self.monitor.health.tick = tick
        self.settings = worker.settings = settings
        worker.configs = {feed.url: feed for feed in settings.feed_configs()}
        assert self.reloader is not None
        worker.ctx = dataclasses.replace(worker.ctx, rules=self.reloader.rules)

    async def _claim_and_start(self, worker: Worker) -> None:
        try:
            await self._claim_due_work(worker)
        except StorageError as exc:  # the database is down or busy: try again next tick
            log.warning("dispatch: %s", exc)

    async def _claim_due_work(self, worker: Worker) -> None:
        now = self.clock()
        if worker.free:
            feeds = await asyncio.to_thread(self.store.claim_due, now, worker.free,
                                            worker.ctx.owner, self.settings.service.lease)
            for feed in feeds:
                worker.start_poll(feed)
        if worker.free:
            for pending in await self._claim_articles(worker, now):
                worker.start_article(pending)

    async def _claim_articles(
        self, worker: Worker, now: datetime, limit: int | None = None
    ) -> list[PendingArticle]:
        limit = limit or min(worker.free, self.settings.service.article_batch)
        return await asyncio.to_thread(self.store.claim_articles, now, limit, worker.ctx.owner,
                                       self.settings.service.lease)

    async def _sweep(self) -> None:
        with _logged("lease sweep"):
            swept = await asyncio.to_thread(self.store.sweep_leases, self.clock())
            if swept:
                log.warning("released %d expired leases (a worker died mid-poll)", swept)

    async def _retention(self) -> None:
        with _logged("retention"):
            removed = await asyncio.to_thread(self.store.apply_retention, self.clock())
            if removed:
                log.info("retention removed %d items", removed)

    async def poll_once(
        self, progress: Callable[[int, int], None] = lambda done, total: None
    ) -> Totals:
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

    async def _poll_all(self, worker: Worker, progress: Callable[[int, int], None]) -> None:
        now = self.clock()
        far = now + timedelta(days=36500)
        feeds = await asyncio.to_thread(self.store.claim_due, now, 1_000_000, worker.ctx.owner,
                                        self.settings.service.lease, far)
        self.held = await asyncio.to_thread(self.store.held_leases, now, worker.ctx.owner)
        await self._phase(worker, feeds, worker.start_poll, progress)
        # With helpers, a phase deals a whole batch: sized by this process's free slots
        # alone, it held two pages and the helpers had almost nothing to fetch.
        many = self.settings.service.processes > 1
        batch = self.settings.service.article_batch if many else None
        while pending := await self._claim_articles(worker, self.clock(), batch):
            await self._phase(worker, pending, worker.start_article, progress)

    async def _watch_database(self, work: asyncio.Task[Any]) -> None:
        """poll_once's tick: the first check that finds the archive's file gone cancels it."""
        while self._database_ok():
            await asyncio.sleep(self.settings.service.tick)
        work.cancel()

    def skipped_lines(self) -> list[str]:
        """poll_once's feeds left to the processes that hold them, one line per holder: a live
        one, or one whose death cannot be told from here (its lease frees them)."""
        return [f"skipped {h.feeds} feed{'s' * (h.feeds != 1)} held by "
                f"{holders.describe(h.owner)} ("
                + ("a live process)" if h.alive else f"lease until {h.until:%Y-%m-%d %H:%M}Z)")
                for h in self.held]  # fmt: skip

    def close(self) -> None:
        """Stop poll_once's helper processes, if it started any."""
        if self._crew is not None:
            self._crew.finish()
            self._crew = None

    def _team(self, jobs: int) -> Crew | None:
        """The helper processes for a phase of ``jobs`` (started on first use), or None."""
        if self.settings.service.processes <= 1 or jobs < 2:
            return None
        if self._crew is not None and not self._crew.intact():
            self.close()
        if self._crew is None:
            self._crew = Crew(self.settings, self.owner, self.settings.service.processes - 1,
                              play_hands)
            self._crew.start()
        return self._crew

    async def _phase(self, worker: Worker, jobs: list[Any], start: Callable[[Any], None],
                     progress: Callable[[int, int], None]) -> None:
        """Run ``jobs`` here, or dealt between this process and its helpers."""
        team = self._team(len(jobs))
        if team is None:
            await self._run_all(worker, jobs, start, progress)
            return
        team.deal(jobs)
        done_before = team.done
        own = 0
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def finished() -> None:
            nonlocal own
            own += 1
            wake.set()

        def notify() -> None:
            loop.call_soon_threadsafe(wake.set)

        def count() -> int:
            for delta in team.collect():
                self.totals.merge(delta)
            return own + team.done - done_before

        worker.on_done = finished
        worker.on_room = wake.set
        team.notify = notify
        try:
            while (finished_jobs := count()) < len(jobs):
                progress(finished_jobs, len(jobs))
                if not team.intact():
                    await worker.drain(None)
                    await asyncio.to_thread(self.close)  # the others finish their hands
                    await asyncio.to_thread(self._lost, len(jobs) - count(), jobs)
                    break
                if worker.free:
                    hand = await asyncio.to_thread(team.take, 0.02)
                    for job in hand or ():
                        start(job)
                    if hand:
                        continue
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 0.1)
            progress(count(), len(jobs))
        finally:
            team.notify = lambda: None

    def _lost(self, count: int, jobs: list[Any]) -> None:
        """A helper died holding jobs: count them failed, and free the feeds it held now
        rather than when their leases expire (feeds already written hold no lease)."""
        message = (f"a helper process died: {count} jobs were not done; their feeds are due "
                   "again at the next poll")
        log.error("%s", message)
        self.totals.failed += count
        self.totals.errors.append(message)
        for job in jobs:
            if isinstance(job, FeedState):
                self.store.release(job.id, self.owner)
        pages = [job.item_id for job in jobs if isinstance(job, PendingArticle)]
        if pages:
            self.store.release_articles(pages, self.owner, self.clock())

    async def take_hands(self, jobs: Any, owner: str, done: Callable[[Totals], None]) -> None:
        """A helper process's part of ``poll_once``: run the hands dealt until told to stop,
        reporting what each job added to the totals."""
        async with open_context(self.settings, self.store, clock=self.clock, owner=owner) as ctx:
            worker = Worker(ctx, self.settings, self.totals)
            room = asyncio.Event()

            def finished() -> None:
                done(self.totals.take())
                room.set()

            worker.on_done = finished
            worker.on_room = room.set
            while hand := await asyncio.to_thread(next_hand, jobs):
                for job in hand:
                    (worker.start_poll if isinstance(job, FeedState) else worker.start_article)(job)
                while not worker.free:
                    room.clear()
                    await room.wait()
            await worker.drain(None)

    async def _run_all(self, worker: Worker, jobs: list[Any], start: Callable[[Any], None],
                       progress: Callable[[int, int], None]) -> None:
        """Run ``jobs`` through the worker with bounded concurrency, reporting progress."""
        queue = list(reversed(jobs))
        done = 0
        wake = asyncio.Event()

        def finished() -> None:
            nonlocal done
            done += 1
            progress(done, len(jobs))
            wake.set()

        worker.on_done = finished
        worker.on_room = wake.set
        while queue or worker.tasks:
            while queue and worker.free:
                start(queue.pop())
            wake.clear()
            if worker.tasks:
                await wake.wait()


async def serve_helper(settings: Settings, store: Store, stop: asyncio.Event,
                       config_path: Path | None = None) -> Totals:  # fmt: skip
    """What a helper process of ``run`` runs (``processes.ServeHelpers``): no housekeeping; it
    reloads the configuration file itself, as the main process does."""
    return await Service(settings, store, housekeeping=False, config_path=config_path).run(stop)


async def play_hands(settings: Settings, store: Store, jobs: Any, owner: str,
                     done: Callable[[Totals], None]) -> None:  # fmt: skip
    """What a helper process of ``poll --once`` runs (``processes.Crew``)."""
    await Service(settings, store).take_hands(jobs, owner, done)
