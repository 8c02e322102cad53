"""Running a phase of ``poll --once``: here alone, or dealt between this process and its helpers.

A phase is a list of jobs (claimed feeds, then the pages they brought). With one process the
worker takes them in turn; with ``service.processes`` > 1 a :class:`.processes.Crew` deals them
out in hands and this process plays its share beside the helpers. :func:`play_hands` is what a
helper process runs. No claiming here: the one-shot poll (``oneshot.py``) claims and hands over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aggregator.config import Settings
from aggregator.runtime.worker import Totals, Worker, open_context
from storage.records import FeedState, PendingArticle
from storage.seam import StorageType

if TYPE_CHECKING:  # helper processes (multiprocessing) load only when a phase deals to them
    from aggregator.runtime.processes import Crew

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class Dealer:
    """The helper processes of ``poll --once`` (started on first use, kept until ``close``) and
    the dealing of each phase between them and this process."""

    def __init__(self, settings: Settings, owner: str) -> None:
        self.settings = settings
        self.owner = owner
        self.crew: Crew | None = None

    def close(self) -> None:
        """Stop the helper processes, if any were started."""
        if self.crew is not None:
            self.crew.finish()
            self.crew = None

    async def phase(self, worker: Worker, jobs: list[Any], start: Callable[[Any], None],
                    progress: Progress) -> None:  # fmt: skip
        """Run ``jobs`` here, or dealt between this process and its helpers."""
        team = self._team(len(jobs))
        if team is None:
            await run_all(worker, jobs, start, progress)
        else:
            await self._deal(team, worker, jobs, start, progress)

    def _team(self, jobs: int) -> Crew | None:
        """The helper processes for a phase of ``jobs`` (started on first use), or None."""
        if self.settings.service.processes <= 1 or jobs < 2:
            return None
        if self.crew is not None and not self.crew.intact():
            self.close()
        if self.crew is None:
            from aggregator.runtime.processes import Crew

            self.crew = Crew(self.settings, self.owner, self.settings.service.processes - 1,
                             play_hands)
            self.crew.start()
        return self.crew

    async def _deal(self, team: Crew, worker: Worker, jobs: list[Any],
                    start: Callable[[Any], None], progress: Progress) -> None:  # fmt: skip
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
                worker.totals.merge(delta)
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
                    await asyncio.to_thread(_lost, worker, len(jobs) - count(), jobs)
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


def _lost(worker: Worker, count: int, jobs: list[Any]) -> None:
    """A helper died holding jobs: count them failed, and free the feeds it held now rather
    than when their leases expire (feeds already written hold no lease)."""
    message = (f"a helper process died: {count} jobs were not done; their feeds are due "
               "again at the next poll")
    log.error("%s", message)
    worker.totals.failed += count
    worker.totals.errors.append(message)
    store, owner = worker.ctx.store, worker.ctx.owner
    for job in jobs:
        if isinstance(job, FeedState):
            store.release(job.id, owner)
    pages = [job.item_id for job in jobs if isinstance(job, PendingArticle)]
    if pages:
        store.release_articles(pages, owner, worker.ctx.clock())


async def run_all(worker: Worker, jobs: list[Any], start: Callable[[Any], None],
                  progress: Progress) -> None:  # fmt: skip
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


async def play_hands(settings: Settings, store: StorageType, jobs: Any, owner: str,
                     done: Callable[[Totals], None]) -> None:  # fmt: skip
    """What a helper process of ``poll --once`` runs (``processes.Crew``): play the hands dealt
    until told to stop, reporting what each job added to the totals."""
    from aggregator.runtime.processes import next_hand

    totals = Totals()
    async with open_context(settings, store, owner=owner) as ctx:
        worker = Worker(ctx, settings, totals)
        room = asyncio.Event()

        def finished() -> None:
            done(totals.take())
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
