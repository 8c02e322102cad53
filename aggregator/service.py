"""The long-running service and the one-shot poll: wiring, scheduling and shutdown, no feed logic.

The schedule lives in the database; APScheduler only ticks. Each tick claims the feeds that are due
(with a lease, so several instances can share one PostgreSQL) and the articles still to fetch,
and hands them to a bounded pool of asyncio tasks that run :func:`aggregator.pipeline.poll_feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.config import Settings
from aggregator.errors import ArchiverError, StorageError
from aggregator.extract import SiteRules
from aggregator.http import HttpClient
from aggregator.pipeline import Context, PollOutcome, fetch_article, poll_feed
from aggregator.politeness import HostLimiter, RobotsCache
from storage.records import STATUS_ERROR, STATUS_NOT_MODIFIED, FeedConfig, FeedState, PendingArticle
from storage.store import Store

log = logging.getLogger(__name__)

# How long a stopping service lets in-flight polls finish before abandoning them.
SHUTDOWN_GRACE = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_owner() -> str:
    """A lease owner that is unique per process, readable in the feeds table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Totals:
    """What a run did, for the summary line and the exit status."""

    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    new_items: int = 0
    articles_ok: int = 0
    articles_failed: int = 0
    # The latest errors only: the service runs for months and must not accumulate them.
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))

    def add(self, outcome: PollOutcome) -> None:
        status = outcome.result.status
        if status == STATUS_NOT_MODIFIED:
            self.not_modified += 1
        elif status == STATUS_ERROR or outcome.result.error:
            self.failed += 1
            self.errors.append(outcome.result.error or status)
        else:
            self.ok += 1
        self.new_items += outcome.summary.new_items


@contextlib.asynccontextmanager
async def open_context(
    settings: Settings, store: Store, *, clock: Callable[[], datetime] = utcnow
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
        yield Context(
            store=store,
            http=http,
            limiter=limiter,
            robots=robots,
            rules=SiteRules.load(settings.sites),
            owner=make_owner(),
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
        self.on_done: Callable[[], None] = lambda: None

    @property
    def free(self) -> int:
        return max(0, self.settings.service.concurrency - len(self.tasks))

    def config_for(self, feed: FeedState) -> FeedConfig:
        known = self.configs.get(feed.config_url or feed.url)
        if known is not None:
            return known
        d = self.settings.defaults
        return FeedConfig(url=feed.url, interval=feed.interval, min_interval=d.min_interval,
                          max_interval=d.max_interval, fetch_articles=d.fetch_articles)

    def start_poll(self, feed: FeedState) -> None:
        self._spawn(self._poll(feed), f"poll {feed.url}")

    def start_article(self, pending: PendingArticle) -> None:
        self._spawn(self._article(pending), f"article {pending.url}")

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
        result = await fetch_article(self.ctx, pending)
        await asyncio.to_thread(self.ctx.store.apply_article, pending.item_id, result,
                                self.ctx.clock())
        if result.error:
            self.totals.articles_failed += 1
            log.info("%s", result.error)
        else:
            self.totals.articles_ok += 1

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._guard(coro, name), name=name)
        self.tasks.add(task)
        task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.on_done()

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """One failing feed never stops the others: an unexpected error is logged, not raised."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except ArchiverError as exc:  # e.g. the database was unreachable: the lease will expire
            log.warning("%s: %s", name, exc)
            self.totals.failed += 1
            self.totals.errors.append(str(exc))
        except Exception:
            log.exception("%s failed unexpectedly", name)
            self.totals.failed += 1

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

    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.totals = Totals()
        # A claim runs in a thread and commits even if the job awaiting it is cancelled (the
        # scheduler's shutdown cancels running jobs), so it runs as its own task that shutdown
        # waits for: its feeds then get polled or released. No claim starts once stopping.
        self._claiming: asyncio.Task[None] | None = None
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> Totals:
        async with open_context(self.settings, self.store, clock=self.clock) as ctx:
            worker = Worker(ctx, self.settings, self.totals)
            scheduler = self._scheduler(worker)
            scheduler.start()
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
                log.info("stopping: no new polls; waiting up to %.0fs for %d in flight",
                         SHUTDOWN_GRACE, len(worker.tasks))
                await worker.drain(SHUTDOWN_GRACE)
        return self.totals

    def _scheduler(self, worker: Worker) -> AsyncIOScheduler:
        tick = self.settings.service.tick
        scheduler = AsyncIOScheduler(timezone=UTC)
        every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, int(tick))}
        scheduler.add_job(self._dispatch, "interval", args=[worker], seconds=tick,
                          next_run_time=self.clock(), id="dispatch", **every)
        scheduler.add_job(self._sweep, "interval", seconds=self.settings.service.lease / 2,
                          id="sweep-leases", **every)
        scheduler.add_job(self._retention, "interval", hours=1, id="retention", **every)
        return scheduler

    async def _dispatch(self, worker: Worker) -> None:
        """Claim what is due, up to the free capacity; polls come before article fetches."""
        if self._stopping or (self._claiming is not None and not self._claiming.done()):
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

    async def _claim_articles(self, worker: Worker, now: datetime) -> list[PendingArticle]:
        limit = min(worker.free, self.settings.service.article_batch)
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
        """Poll every active feed once, now, then fetch the articles they brought."""
        async with open_context(self.settings, self.store, clock=self.clock) as ctx:
            worker = Worker(ctx, self.settings, self.totals)
            now = self.clock()
            far = now + timedelta(days=36500)
            feeds = await asyncio.to_thread(self.store.claim_due, now, 1_000_000, ctx.owner,
                                            self.settings.service.lease, far)
            await self._run_all(worker, feeds, worker.start_poll, progress)
            while pending := await self._claim_articles(worker, self.clock()):
                await self._run_all(worker, pending, worker.start_article, progress)
        return self.totals

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
        while queue or worker.tasks:
            while queue and worker.free:
                start(queue.pop())
            wake.clear()
            if worker.tasks:
                await wake.wait()
