"""The long-running service and the one-shot poll: wiring, scheduling and shutdown, no feed logic.

The schedule lives in the database; APScheduler only ticks. Each tick claims the feeds that are due
(with a lease, so several instances can share one PostgreSQL) and the articles still to fetch,
and hands them to a bounded pool of asyncio tasks that run :func:`.pipeline.poll_feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import multiprocessing
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.config import Settings
from aggregator.errors import ArchiverError, StorageError
from aggregator.extract import SiteRules
from aggregator.fetch import HostLimiter, HttpClient, RobotsCache
from aggregator.runtime.pipeline import Context, PollOutcome, archive_article, poll_feed
from aggregator.runtime.processes import RESTART_DELAY, Crew, ServeHelpers, next_hand
from aggregator.runtime.writer import poll_writer
from storage import holders
from storage.dbfile import DatabaseGone
from storage.records import STATUS_ERROR, STATUS_NOT_MODIFIED, FeedConfig, FeedState, PendingArticle
from storage.store import Store

log = logging.getLogger(__name__)

# How long a stopping service lets in-flight polls finish before abandoning them.
SHUTDOWN_GRACE = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_owner() -> str:
    """A lease owner that names this process (host, pid, start time: ``storage.holders``), so
    that its leases are freed at once if it dies; unique per call."""
    return holders.new_owner()


@dataclass
class Totals:
    """What a run did, for the summary line and the exit status."""

    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    new_items: int = 0
    articles_ok: int = 0
    articles_failed: int = 0
    # The latest errors only (feeds', pages'): the service runs for months and must not
    # accumulate them; ``poll --once`` keeps more (``keep``), to name each failure.
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    page_errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))

    def keep(self, lines: int) -> None:
        """Keep up to ``lines`` of each kind of error from now on."""
        self.errors = deque(self.errors, maxlen=lines)
        self.page_errors = deque(self.page_errors, maxlen=lines)

    def feed_failed(self, error: str) -> None:
        self.failed += 1
        self.errors.append(error)

    def page_done(self, error: str | None) -> None:
        if error is None:
            self.articles_ok += 1
        else:
            self.articles_failed += 1
            self.page_errors.append(error)

    def add(self, outcome: PollOutcome) -> None:
        status = outcome.result.status
        if status == STATUS_NOT_MODIFIED:
            self.not_modified += 1
        elif status == STATUS_ERROR or outcome.result.error:
            self.feed_failed(outcome.result.error or status)
        else:
            self.ok += 1
        self.new_items += outcome.summary.new_items

    def take(self) -> Totals:
        """What was counted since the last call, and start again from zero."""
        taken = copy.copy(self)
        fresh = Totals()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))
        return taken

    def merge(self, other: Totals) -> None:
        """Add a helper process's totals (``service.processes``)."""
        for f in fields(self):
            if f.name in ("errors", "page_errors"):
                getattr(self, f.name).extend(getattr(other, f.name))
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@contextlib.asynccontextmanager
async def open_context(
    settings: Settings, store: Store, *, clock: Callable[[], datetime] = utcnow,
    owner: str | None = None,
) -> AsyncIterator[Context]:
    """The clients a poll needs, closed on exit."""
    http = HttpClient(settings.http)
    limiter = HostLimiter(settings.http.per_host_concurrency, settings.http.per_host_delay)
    robots = (RobotsCache(http, settings.http.user_agent, limiter=limiter)
              if settings.http.respect_robots else None)
    workers = settings.service.parse_workers
    # "spawn": the service has threads already, and forking a threaded process is unsafe.
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers else None)
    try:
        async with poll_writer(store) as writer:
            yield Context(
                store=store,
                writer=writer,
                http=http,
                limiter=limiter,
                robots=robots,
                rules=SiteRules.load(settings.sites),
                owner=owner or make_owner(),
                clock=clock,
                rng=random.Random(),
                parse_pool=pool,
            )
    finally:
        await http.aclose()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


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


class Worker:
    """Runs polls and article fetches as tasks, at most ``capacity`` at once."""

    def __init__(self, ctx: Context, settings: Settings, totals: Totals) -> None:
        self.ctx = ctx
        self.settings = settings
        self.totals = totals
        self.configs = {feed.url: feed for feed in settings.feed_configs()}
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_done: Callable[[], None] = lambda: None  # a job finished
        self.on_room: Callable[[], None] = lambda: None  # a poll now waits only for its write
        ctx.writer.on_queued = lambda: self.on_room()

    @property
    def free(self) -> int:
        """Room for more work: polls waiting only for their write (group commit) do not count,
        up to ``concurrency`` of them, so fetching goes on while a batch is written."""
        limit = self.settings.service.concurrency
        writing = min(self.ctx.writer.pending, limit)
        return max(0, limit - len(self.tasks) + writing)

    def config_for(self, feed: FeedState) -> FeedConfig:
        known = self.configs.get(feed.config_url or feed.url)
        if known is not None:
            return known
        d = self.settings.defaults
        return FeedConfig(url=feed.url, interval=feed.interval, min_interval=d.min_interval,
                          max_interval=d.max_interval, fetch_articles=d.fetch_articles)

    def start_poll(self, feed: FeedState) -> None:
        self._spawn(self._poll(feed), f"poll {feed.url}", self.totals.feed_failed)

    def start_article(self, pending: PendingArticle) -> None:
        self._spawn(self._article(pending), f"article {pending.url}", self.totals.page_done)

    async def _poll(self, feed: FeedState) -> None:
        try:
            outcome = await poll_feed(self.ctx, feed, self.config_for(feed))
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self.ctx.store.release, feed.id, self.ctx.owner))
            raise
        self.totals.add(outcome)
        log.debug("polled %s: %s, %d new", feed.url, outcome.result.status,
                  outcome.summary.new_items)

    async def _article(self, pending: PendingArticle) -> None:
        result = await archive_article(self.ctx, pending)
        self.totals.page_done(result.error)
        if result.error:
            log.info("%s", result.error)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str,
               failed: Callable[[str], None]) -> None:  # fmt: skip
        task = asyncio.create_task(self._guard(coro, name, failed), name=name)
        self.tasks.add(task)
        task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.on_done()

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str,
                     failed: Callable[[str], None]) -> None:  # fmt: skip
        """One failing feed never stops the others: an error is logged and counted, not raised.
        Polls and article fetches record their own failures; what reaches here could not be
        written (the database was unreachable): the lease brings the work back later."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except ArchiverError as exc:
            log.warning("%s: %s", name, exc)
            failed(f"{name}: {exc}")
        except Exception as exc:
            log.exception("%s failed unexpectedly", name)
            failed(f"{name}: unexpected {type(exc).__name__}: {exc}")

    async def drain(self, timeout: float | None) -> None:
        """Wait for in-flight work; after ``timeout`` abandon it (cancelled polls write nothing)."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


class Service:
    """The background service: ``run`` until ``stop`` is set."""

    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], datetime] = utcnow,
                 housekeeping: bool = True):  # fmt: skip
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

    async def run(self, stop: asyncio.Event) -> Totals:
        helpers = (ServeHelpers(self.settings, self.settings.service.processes - 1, serve_helper)
                   if self.housekeeping and self.settings.service.processes > 1 else None)
        self._stop = stop
        await asyncio.to_thread(self.store.hold, self.owner)
        async with open_context(self.settings, self.store, clock=self.clock,
                                owner=self.owner) as ctx:  # fmt: skip
            worker = Worker(ctx, self.settings, self.totals)
            scheduler = self._scheduler(worker, helpers)
            scheduler.start()
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
        scheduler.add_job(self._dispatch, "interval", args=[worker], seconds=tick,
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

    async def _dispatch(self, worker: Worker) -> None:
        """Claim what is due, up to the free capacity; polls come before article fetches."""
        if self._stopping or (self._claiming is not None and not self._claiming.done()):
            return
        if not self._database_ok():
            return
        self._claiming = asyncio.create_task(self._claim_and_start(worker))
        try:
            await asyncio.shield(self._claiming)
        except asyncio.CancelledError:  # shutdown: run() waits for the claim itself
            log.debug("dispatch: cancelled by shutdown")

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


async def serve_helper(settings: Settings, store: Store, stop: asyncio.Event) -> Totals:
    """What a helper process of ``run`` runs (``processes.ServeHelpers``): no housekeeping."""
    return await Service(settings, store, housekeeping=False).run(stop)


async def play_hands(settings: Settings, store: Store, jobs: Any, owner: str,
                     done: Callable[[Totals], None]) -> None:  # fmt: skip
    """What a helper process of ``poll --once`` runs (``processes.Crew``)."""
    await Service(settings, store).take_hands(jobs, owner, done)
