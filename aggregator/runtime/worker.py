"""The worker side of a run: the clients a poll needs, the tasks that run polls and article
fetches (at most ``concurrency`` at once), and the totals they add up to; no scheduling. Also
what the daemon and the one-shot poll share: the page claim, the archive-file check.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from aggregator.config import Settings
from aggregator.errors import ArchiverError
from aggregator.extract.lazy import LazyRules
from aggregator.fetch import HostLimiter, HttpClient, RobotsCache
from aggregator.runtime.logs import log_poll
from aggregator.runtime.metrics import Recorder
from aggregator.runtime.pipeline import Context, PollOutcome, archive_article, poll_feed
from aggregator.runtime.writer import poll_writer
from storage import holders
from storage.dbfile import DatabaseGone
from storage.records import STATUS_ERROR, STATUS_NOT_MODIFIED, FeedConfig, FeedState, PendingArticle
from storage.seam import StorageType

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_owner() -> str:
    """A lease owner that names this process (host, pid, start time: ``storage.holders``), so
    that its leases are freed at once if it dies; unique per call."""
    return holders.new_owner()


def database_gone(store: StorageType) -> DatabaseGone | None:
    """Why the archive's file is gone (deleted or replaced), or None while it is there: a
    process writing on would make a new, empty archive."""
    try:
        store.check_database()
    except DatabaseGone as exc:
        return exc
    return None


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
    settings: Settings, store: StorageType, *, clock: Callable[[], datetime] = utcnow,
    owner: str | None = None,
) -> AsyncIterator[Context]:
    """The clients a poll needs, closed on exit."""
    http = HttpClient(settings.http)
    limiter = HostLimiter(settings.http.per_host_concurrency, settings.http.per_host_delay)
    robots = (RobotsCache(http, settings.http.user_agent, limiter=limiter)
              if settings.http.respect_robots else None)
    pool = _parse_pool(settings.service.parse_workers)
    try:
        async with poll_writer(store, alone=settings.service.processes == 1) as writer:
            yield Context(
                store=store,
                writer=writer,
                http=http,
                limiter=limiter,
                robots=robots,
                rules=LazyRules(settings.sites),
                owner=owner or make_owner(),
                clock=clock,
                rng=random.Random(),
                parse_pool=pool,
            )
    finally:
        await http.aclose()
        # Parse threads finish the feed in hand (bounded by max_body_size) before the loop
        # closes, as the loop's own executor's would: a result must not land on a closed loop.
        pool.shutdown(wait=isinstance(pool, ThreadPoolExecutor), cancel_futures=True)


PARSE_THREADS = 2  # with service.parse_workers: 0


def _parse_pool(workers: int) -> Executor:
    """Where feeds are parsed. ``0``: two threads of their own, not the loop's default executor
    (cores + 4 threads): under the GIL more parsing threads only take turns. On 1,000 new feeds
    the default's six were no faster, switched half again as often and held 5 MiB more
    (benchmarks/README.md, "Seventh round"). Two, because lxml and nh3 release the GIL while
    they work. ``N``: processes; multiprocessing loads only for them, with "spawn", as the
    service has threads already and forking a threaded process is unsafe."""
    if not workers:
        return ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="parse")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


class Worker:
    """Runs polls and article fetches as tasks, at most ``capacity`` at once."""

    def __init__(self, ctx: Context, settings: Settings, totals: Totals,
                 recorder: Recorder | None = None) -> None:  # fmt: skip
        self.ctx = ctx
        self.settings = settings
        self.totals = totals
        self.recorder = recorder or Recorder()  # metrics (service.listen), else a no-op
        self.configs = {feed.url: feed for feed in settings.feed_configs()}
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_done: Callable[[], None] = lambda: None  # a job finished
        self.on_room: Callable[[], None] = lambda: None  # a poll now waits only for its write
        ctx.writer.on_queued = lambda: self.on_room()
        self.polls = 0  # polls running, those waiting for their write included
        ctx.writer.expecting = lambda: self.polls > self.ctx.writer.pending  # some still fetch
        ctx.writer.on_batch = lambda size: self.recorder.batch(size)

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
        started = time.monotonic()
        self.polls += 1
        try:
            outcome = await poll_feed(self.ctx, feed, self.config_for(feed))
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self.ctx.store.release, feed.id, self.ctx.owner))
            raise
        finally:
            self.polls -= 1
        self.totals.add(outcome)
        result = outcome.result
        self.recorder.poll(result.status, result.http_status, outcome.summary.new_items,
                           time.monotonic() - started)  # fmt: skip
        log_poll(feed.url, outcome.result, outcome.summary, self.ctx.clock())

    async def _article(self, pending: PendingArticle) -> None:
        started = time.monotonic()
        result = await archive_article(self.ctx, pending)
        self.totals.page_done(result.error)
        outcome = "ok" if result.error is None else "retry" if result.next_try else "gave_up"
        self.recorder.page(outcome, time.monotonic() - started)
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
            log.warning("stopping: abandoned %s after %.0fs: nothing of it is written; it is due "
                        "again at the next start", task.get_name(), timeout or 0)
            task.cancel()
        if pending:
            await asyncio.wait(pending)


async def claim_articles(worker: Worker, now: datetime, limit: int | None = None
                         ) -> list[PendingArticle]:  # fmt: skip
    """Lease the pages still to fetch: ``limit`` of them, or as many as the worker has room for
    (at most ``service.article_batch``)."""
    service = worker.settings.service
    limit = limit or min(worker.free, service.article_batch)
    return await asyncio.to_thread(worker.ctx.store.claim_articles, now, limit, worker.ctx.owner,
                                   service.lease)
