"""The long-running service (``run``): the scheduler, its ticks, shutdown; no feed logic.

The schedule lives in the database; APScheduler only ticks. Each tick claims the feeds that are due
(with a lease, so several instances can share one PostgreSQL) and the articles still to fetch,
and hands them to a bounded pool of asyncio tasks that run :func:`.pipeline.poll_feed`.

Hooking in (a health endpoint, a config reload): read :class:`DaemonState` (``Daemon.state``),
and append to ``Daemon.on_tick`` what must run at every dispatch tick, or add a job in
``Daemon._scheduler``. Hooked in already: ``monitor.Monitor`` (metrics, /healthz and /metrics,
sd_notify) beats at every tick; ``reload.Reloader`` is asked before each dispatch whether the
configuration changed (or SIGHUP asked for a reload), and ``_adopt`` applies a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.config import Settings
from aggregator.errors import ConfigError, StorageError
from aggregator.runtime.monitor import Monitor
from aggregator.runtime.processes import RESTART_DELAY, ServeHelpers, unblock_reloads
from aggregator.runtime.reload import Reloader
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

if TYPE_CHECKING:  # imported by run() alone: poll --once starts faster without it
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

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


@dataclass
class DaemonState:
    """What a running daemon knows of itself, in one place for whatever reports or steers it.
    Changed on the event loop only: read it there (a hook, an endpoint's handler)."""

    owner: str  # the lease owner: this process (``storage.holders``)
    totals: Totals = field(default_factory=Totals)
    worker: Worker | None = None  # while running: its tasks are the work in flight
    ticks: int = 0  # dispatch ticks so far
    last_tick: datetime | None = None
    stopping: bool = False  # no claim starts once set
    fatal: DatabaseGone | None = None  # the archive's file vanished: stop, exit 3


# Runs at the end of every dispatch tick, on the event loop: keep it quick. An error it
# raises is logged and the daemon goes on.
TickHook = Callable[[DaemonState], None]


class Daemon:
    """The background service: ``run`` until ``stop`` is set."""

    def __init__(self, settings: Settings, store: StorageType, *,
                 clock: Callable[[], datetime] = utcnow,
                 housekeeping: bool = True, config_path: Path | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.clock = clock
        # Helper instances (service.processes) leave lease sweeps and retention to the main one.
        self.housekeeping = housekeeping
        self.state = DaemonState(owner=make_owner())
        self.on_tick: list[TickHook] = []
        # A claim runs in a thread and commits even if the job awaiting it is cancelled (the
        # scheduler's shutdown cancels running jobs), so it runs as its own task that shutdown
        # waits for: its feeds then get polled or released. No claim starts once stopping.
        self._claiming: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()  # run()'s, once it runs
        # Reloads of the configuration file (SIGHUP, or its content changed), when there is one.
        self.config_path = config_path
        self.reloader = Reloader(config_path, settings) if config_path is not None else None
        self.monitor: Monitor | None = None  # run()'s metrics, endpoint and systemd link
        self._helpers: ServeHelpers | None = None
        self._jobs: AsyncIOScheduler | None = None

    async def run_until_signalled(
        self, beside: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None
    ) -> Totals:
        """``run`` until SIGTERM or SIGINT (the ``run`` command). ``beside`` (the web view of
        ``service.web``) serves until the same stop, and is awaited once the service stopped."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        alongside = None if beside is None else asyncio.create_task(beside(stop))
        try:
            return await self.run(stop)
        finally:
            stop.set()
            if alongside is not None:
                await alongside

    async def run(self, stop: asyncio.Event) -> Totals:
        """Tick until ``stop`` is set, then let in-flight work finish (``SHUTDOWN_GRACE``)."""
        self.monitor = monitor = Monitor(self.settings, self.store, main=self.housekeeping)
        self.on_tick.append(lambda _state: monitor.ticked())
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
        state = self.state
        await asyncio.to_thread(self.store.hold, state.owner)
        async with open_context(self.settings, self.store, clock=self.clock,
                                owner=state.owner) as ctx:  # fmt: skip
            worker = state.worker = Worker(ctx, self.settings, state.totals, monitor.recorder)
            await monitor.start()
            scheduler = self._jobs = self._scheduler(worker, helpers)
            scheduler.start()
            if self.reloader is not None:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reloader.request)
                unblock_reloads()
            if helpers is not None:
                helpers.start()
            log.info("service started (%s): %d feeds, database %s", holders.describe(ctx.owner),
                     len(worker.configs), self.store.describe())
            try:
                await stop.wait()
            finally:
                # No new claims; a claim in flight lands in worker.tasks, and its job ends
                # before the scheduler's shutdown could cancel it.
                state.stopping = True
                await monitor.stop()
                if self._claiming is not None:
                    await asyncio.wait([self._claiming])
                scheduler.shutdown(wait=False)
                grace = 0.0 if state.fatal else SHUTDOWN_GRACE  # no write could land anyway
                log.info("stopping: no new polls; waiting up to %.0fs for %d in flight",
                         grace, len(worker.tasks))
                stopped = (asyncio.create_task(asyncio.to_thread(helpers.stop))
                           if helpers is not None else None)
                await worker.drain(grace)
                if stopped is not None:
                    await stopped
        if state.fatal is not None:
            raise state.fatal
        return state.totals

    def _scheduler(self, worker: Worker, helpers: ServeHelpers | None) -> AsyncIOScheduler:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        """The daemon's periodic jobs: dispatch each ``service.tick``, housekeeping, helpers."""
        tick = self.settings.service.tick
        scheduler = AsyncIOScheduler(timezone=UTC)
        every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, int(tick))}
        scheduler.add_job(self.tick, "interval", args=[worker], seconds=tick,
                          next_run_time=self.clock(), id="dispatch", **every)
        if self.housekeeping:
            scheduler.add_job(self._sweep, "interval", seconds=self.settings.service.lease / 2,
                              id="sweep-leases", **every)
            scheduler.add_job(self._retention, "interval", hours=1, id="retention", **every)
        if helpers is not None:
            scheduler.add_job(self._check_helpers, "interval", args=[helpers],
                              seconds=RESTART_DELAY, id="helpers", **every)
        return scheduler

    async def tick(self, worker: Worker) -> None:
        """One dispatch tick: claim what is due, then run the ``on_tick`` hooks."""
        self.state.ticks += 1
        self.state.last_tick = self.clock()
        if not self.state.stopping:
            await self._maybe_reload(worker)
        await self._dispatch(worker)
        for hook in self.on_tick:
            try:
                hook(self.state)
            except Exception:
                log.exception("tick hook %r failed", hook)

    async def _maybe_reload(self, worker: Worker) -> None:
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
        self._adopt(reloaded.settings, worker)
        for key in reloaded.kept:
            log.warning("reload: %s changed; it takes effect at the next restart", key)
        log.info("configuration reloaded: %s", reloaded.summary)
        self.monitor.reloaded(True)
        if self._helpers is not None:
            self._helpers.settings = self.settings  # a helper restarted later starts with it
            self._helpers.signal(signal.SIGHUP)

    def _adopt(self, settings: Settings, worker: Worker) -> None:
        """New polls use the new settings: per-feed options, defaults, site rules, service
        knobs (a new tick reschedules the dispatch job)."""
        tick = settings.service.tick
        if tick != self.settings.service.tick and self._jobs is not None:
            self._jobs.reschedule_job("dispatch", trigger="interval", seconds=tick)
            if self.monitor is not None:
                self.monitor.health.tick = tick
        self.settings = worker.settings = settings
        worker.configs = {feed.url: feed for feed in settings.feed_configs()}
        assert self.reloader is not None
        worker.ctx = dataclasses.replace(worker.ctx, rules=self.reloader.rules)

    def _check_helpers(self, helpers: ServeHelpers) -> None:
        if self._database_ok():  # a helper restarted now would make a new, empty archive
            helpers.check()

    def _database_ok(self) -> bool:
        """False once the archive's file was deleted or replaced: then say so and stop."""
        gone = database_gone(self.store)
        if gone is None:
            return True
        if self.state.fatal is None:
            self.state.fatal = gone
            log.critical("%s", gone)
            self._stop.set()
        return False

    async def _dispatch(self, worker: Worker) -> None:
        """Claim what is due, up to the free capacity; polls come before article fetches."""
        if self.state.stopping or (self._claiming is not None and not self._claiming.done()):
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
            for pending in await claim_articles(worker, now):
                worker.start_article(pending)

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


async def serve_helper(settings: Settings, store: StorageType, stop: asyncio.Event,
                       config_path: Path | None = None) -> Totals:  # fmt: skip
    """What a helper process of ``run`` runs (``processes.ServeHelpers``): no housekeeping; it
    reloads the configuration file itself, as the main process does."""
    return await Daemon(settings, store, housekeeping=False, config_path=config_path).run(stop)
