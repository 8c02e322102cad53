"""More than one core: helper processes beside the service's own (``service.processes``).

One Python process polls on one core: parsing and writing hold the GIL. Past a few hundred
feeds a minute, more processes poll more. Two shapes, both sharing the one database:

- ``run``: each helper is a whole service instance of its own (its own dispatch ticks, claims
  and leases, exactly as several machines sharing one PostgreSQL would be); the main process
  keeps the housekeeping, forwards SIGTERM and restarts a helper that died.
- ``poll --once``: the main process claims every feed once, under one lease owner, and deals
  the claimed feeds (then the articles they brought) out through a queue, a few at a time, so a
  slow process takes fewer. Helpers write with that owner, report each finished job, and hand
  their totals back at the end.

Helpers are spawned, never forked: the parent has threads (the database pool, the executor).
What a helper runs is given by the caller (a module-level function, pickled by name), so this
module never imports the service that starts it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from aggregator.config import Settings
from aggregator.errors import ArchiverError
from aggregator.runtime import eventloop
from aggregator.runtime.logs import configure_logging
from storage.seam import StorageType, open_store

log = logging.getLogger(__name__)

CONTEXT = multiprocessing.get_context("spawn")
# How long a stopping helper may take before it is killed: the service's own grace, and some.
STOP_TIMEOUT = 20.0
RESTART_DELAY = 5.0
ORPHAN_CHECK = 1.0  # seconds between a helper's looks at its main process

# A helper of ``run``: serves on the store until the event is set.
Serve = Callable[[Settings, StorageType, asyncio.Event], Coroutine[Any, Any, object]]
# A helper of ``poll --once``: plays the hands dealt on ``jobs`` as ``owner``, reporting each.
Play = Callable[[Settings, StorageType, Any, str, Callable[[Any], None]],
                Coroutine[Any, Any, None]]


def _log_level() -> int:
    return logging.getLogger().getEffectiveLevel()


# -- run: helper service instances --------------------------------------------------------------


def _serve_main(target: Serve, settings: Settings, level: int, name: str) -> None:
    """A helper process of ``run``: a service instance without the housekeeping."""
    configure_logging(level, name)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        orphaned = asyncio.create_task(_stop_when_orphaned(stop))
        try:
            with open_store(settings.database, settings.timeouts()) as store:
                await target(settings, store, stop)
        finally:
            orphaned.cancel()

    try:
        eventloop.run(serve(), settings.service.event_loop)
    except ArchiverError as exc:
        log.error("%s", exc)
        sys.exit(3)


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A helper whose main process died (``kill -9``) stops too, releasing its leases, rather
    than poll on beside the helpers of the next ``run``."""
    parent = multiprocessing.parent_process()
    while parent is None or parent.is_alive():
        await asyncio.sleep(ORPHAN_CHECK)
    log.error("the main process is gone; stopping")
    stop.set()


class ServeHelpers:
    """The helper instances of ``run``: started together, restarted if one dies, stopped on exit."""

    def __init__(self, settings: Settings, count: int, target: Serve) -> None:
        self.settings = settings
        self.target = target
        self.procs: list[BaseProcess | None] = [None] * count
        self.stopping = False

    def start(self) -> None:
        for index in range(len(self.procs)):
            self._start(index)

    def _start(self, index: int) -> None:
        name = f"helper-{index + 1}"
        proc = CONTEXT.Process(target=_serve_main,
                               args=(self.target, self.settings, _log_level(), name),
                               name=name, daemon=False)
        # Born with SIGHUP blocked (the mask survives exec; a handler would not): a reload
        # forwarded while it starts waits until its own handler is set (``unblock_reloads``).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.procs[index] = proc
        log.info("started %s (pid %s)", name, proc.pid)

    def check(self) -> None:
        """Restart a helper that exited while the service runs (a crash, the OOM killer)."""
        for index, proc in enumerate(self.procs):
            if self.stopping or proc is None or proc.is_alive():
                continue
            log.error("%s exited with status %s; restarting it", proc.name, proc.exitcode)
            self._start(index)

    def signal(self, sig: int) -> None:
        """Pass a signal on (SIGHUP: reload the configuration) to every live helper."""
        for proc in self.procs:
            if proc is not None and proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, sig)

    def stop(self) -> None:
        """SIGTERM every helper, wait for them to drain, kill what outlives the timeout."""
        self.stopping = True
        live = [p for p in self.procs if p is not None and p.is_alive()]
        for proc in live:
            proc.terminate()
        _reap(live)


def unblock_reloads() -> None:
    """In a helper of ``run``, once its SIGHUP handler is set: let the signal in."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def _reap(procs: list[BaseProcess]) -> None:
    """Wait for helpers that were told to stop; kill what outlives the timeout."""
    for proc in procs:
        proc.join(STOP_TIMEOUT)
        if proc.is_alive():
            log.error("%s did not stop in %.0fs; killing it", proc.name, STOP_TIMEOUT)
            proc.kill()
            proc.join()
        elif proc.exitcode:
            log.error("%s exited with status %s", proc.name, proc.exitcode)


# -- poll --once: helpers that take jobs from a queue --------------------------------------------


class Crew:
    """The helpers of ``poll --once`` and their two queues; the main process deals and plays.

    ``jobs`` carries hands (lists of ``FeedState`` or ``PendingArticle``, ``None`` to stop);
    ``reports`` carries ``("done", Totals)`` as a helper finishes a job (what that job added)
    and ``("bye", None)`` as it leaves. One thread reads the reports for the crew's whole life,
    so none is lost. Helpers stay up between calls (a service object polls again and again).
    """

    def __init__(self, settings: Settings, owner: str, count: int, target: Play) -> None:
        self.settings = settings
        self.target = target
        self.owner = owner
        self.jobs: Any = CONTEXT.Queue()
        self.reports: Any = CONTEXT.Queue()
        self.procs: list[BaseProcess] = []
        self.count = count
        self.done = 0  # jobs the helpers finished, as reported so far
        self.notify: Callable[[], None] = lambda: None  # called from the reader thread
        self._deltas: list[Any] = []
        self._gone = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="crew reports", daemon=True)

    def start(self) -> None:
        for index in range(self.count):
            name = f"helper-{index + 1}"
            proc = CONTEXT.Process(
                target=_crew_main, name=name, daemon=True,
                args=(self.target, self.settings, self.owner, self.jobs, self.reports, _log_level(),
                      name),
            )  # fmt: skip
            proc.start()
            self.procs.append(proc)
        self._reader.start()

    def deal(self, jobs: Sequence[Any]) -> None:
        """Queue ``jobs`` in small hands: few enough messages, and a slow process takes fewer."""
        size = max(1, min(16, len(jobs) // ((self.count + 1) * 8)))
        for i in range(0, len(jobs), size):
            self.jobs.put(list(jobs[i : i + size]))

    def take(self, timeout: float) -> list[Any] | None:
        """A hand for the main process, or None if none came within ``timeout`` (blocking)."""
        try:
            hand: list[Any] | None = self.jobs.get(timeout=timeout)
        except queue.Empty:
            return None
        return hand

    def collect(self) -> list[Any]:
        """The totals of the jobs helpers finished since the last call."""
        with self._changed:
            deltas, self._deltas = self._deltas, []
        return deltas

    def intact(self) -> bool:
        """False once a helper has died: the jobs it held are lost until their leases expire."""
        return all(p.is_alive() for p in self.procs)

    def _read(self) -> None:
        while (report := self.reports.get()) is not None:
            kind, value = report
            with self._changed:
                if kind == "done":
                    self.done += 1
                    self._deltas.append(value)
                else:
                    self._gone += 1
                self._changed.notify_all()
            self.notify()

    def finish(self) -> None:
        """Stop every helper (each finishes the hand it holds) and the reader thread."""
        for _ in self.procs:
            self.jobs.put(None)
        with self._changed:
            while self._gone < len(self.procs) and any(p.is_alive() for p in self.procs):
                self._changed.wait(1.0)
        _reap(self.procs)
        if self._reader.is_alive():
            self.reports.put(None)
            self._reader.join()


def _crew_main(target: Play, settings: Settings, owner: str, jobs: Any, reports: Any, level: int,
               name: str) -> None:  # fmt: skip
    """A helper process of ``poll --once``: poll what the queue deals until told to stop."""
    configure_logging(level, name)
    # Ctrl-C reaches the whole process group: the main process decides, helpers finish hands.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def done(delta: Any) -> None:
        reports.put(("done", delta))

    try:
        with open_store(settings.database, settings.timeouts()) as store:
            eventloop.run(target(settings, store, jobs, owner, done), settings.service.event_loop)
    finally:
        reports.put(("bye", None))


def next_hand(jobs: Any) -> list[Any] | None:
    """The next hand for a helper; None to stop, also when the main process is gone."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            hand: list[Any] | None = jobs.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return None
            continue
        return hand
