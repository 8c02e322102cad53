"""Group commit of poll outcomes: one write transaction for whatever polls finished meanwhile.

A poll's writes are small (a 304 is one feed row and one history row), so a transaction, a
thread hop and, on SQLite, the write lock per poll cost more than the writes themselves. Polls
hand their ``PollResult`` to one ``PollWriter``; it writes every result queued since its last
transaction in one ``Store.apply_polls`` call, in a thread, while the event loop goes on
fetching (on SQLite the batch is written from the loop itself, once the write lock is ours:
see ``storage.turn``). Each result still commits whole (its entries, validators and next poll
together), and a result that cannot be written fails alone: the store isolates it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from storage.errors import StorageError
from storage.records import PollResult, PollSummary
from storage.seam import StorageType

# Transactions in flight at once where the database arbitrates writers (PostgreSQL): while the
# server runs one batch's statements, this process builds the next one's rows (issue 14).
LANES = 2
# Results per transaction: large enough that a burst of polls costs a few transactions, small
# enough that one transaction never holds SQLite's write lock for long.
MAX_BATCH = 64
# While polls are still fetching, a batch waits this long (or until it is full) for their
# results: a transaction costs about 1 ms of CPU besides its rows, and a commit an fsync. On a
# pass of 1,000 unchanged feeds: 20 transactions instead of 50, 0.03 s less CPU (issue 14).
LINGER = 0.01


class PollWriter:
    """Queues results and writes them in batches; ``write`` returns once its result committed."""

    def __init__(self, store: StorageType, max_batch: int = MAX_BATCH, *,
                 alone: bool = False) -> None:
        self.store = store
        # The only process writing (service.processes: 1): on SQLite too the batch is written
        # from a thread, so that the event loop fetches while the commit waits for the disk
        # (an fsync per transaction at synchronous=FULL); nobody waits for the turn meanwhile.
        self.alone = alone
        self.max_batch = max_batch
        # SQLite has one writer at a time whatever we do: a second transaction would only wait
        self.lanes = LANES if store.write_turn is None else 1
        self._queue: list[tuple[PollResult, asyncio.Future[PollSummary]]] = []
        self._task: asyncio.Task[None] | None = None  # drains every result queued
        self._extra: list[asyncio.Task[None]] = []  # other lanes: full batches only
        self._busy = 0  # lanes writing a batch
        self._writing = 0
        # Called when a result is queued: its poll has finished fetching, so the caller may
        # start another fetch while this one waits for its transaction.
        self.on_queued: Callable[[], None] = lambda: None
        self.on_batch: Callable[[int], None] = lambda size: None  # a batch committed (metrics)
        # Whether more results are on their way (polls still fetching): then a batch lingers.
        self.expecting: Callable[[], bool] = lambda: False
        self._full = asyncio.Event()  # max_batch results are queued: no need to linger

    @property
    def pending(self) -> int:
        """Results handed over and not yet written."""
        return len(self._queue) + self._writing

    async def write(self, result: PollResult) -> PollSummary:
        """Write ``result``; raises its ``StorageError`` (``LeaseLost`` among them) if it fails.

        Cancelled while still queued, the result is withdrawn and nothing of it is written, as
        a cancelled poll must leave no trace; once its batch has started, it commits regardless.
        """
        future: asyncio.Future[PollSummary] = asyncio.get_running_loop().create_future()
        entry = (result, future)
        self._queue.append(entry)
        if len(self._queue) >= self.max_batch:
            self._full.set()
        self._start()
        self.on_queued()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._queue.remove(entry)
            # Nobody awaits it any more: retrieve its outcome so asyncio does not warn.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise

    def _start(self) -> None:
        """A lane for the queue if none drains it; another while every lane is writing and a
        full batch waits (never for a partial one: that would only cost a transaction more)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="poll writer")
            return
        self._extra = [task for task in self._extra if not task.done()]
        lanes = 1 + len(self._extra)
        if len(self._queue) >= self.max_batch and self._busy == lanes < self.lanes:
            self._extra.append(asyncio.create_task(self._drain(full=True), name="poll writer"))

    async def _drain(self, full: bool = False) -> None:
        """Write batches while results are queued (``full``: while a full batch is)."""
        while self._queue and (not full or len(self._queue) >= self.max_batch):
            if len(self._queue) < self.max_batch and self.expecting():
                await self._linger()
                if not self._queue:  # every result queued was cancelled meanwhile
                    break
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._writing += len(batch)
            self._busy += 1
            try:
                outcomes = await self._apply([r for r, _ in batch])
            except Exception as exc:  # not expected: apply_polls reports per result
                outcomes = [StorageError(f"apply_polls: {exc!r}")] * len(batch)
            except BaseException:  # the loop is going away; the batch may still commit
                _settle(batch, [StorageError("poll writer stopped")] * len(batch))
                raise
            finally:
                self._writing -= len(batch)
                self._busy -= 1
            _settle(batch, outcomes)
            self.on_batch(len(batch))

    async def _linger(self) -> None:
        """Wait up to LINGER for the batch to fill (results cancelled meanwhile drop out)."""
        self._full.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER):
                await self._full.wait()

    async def _apply(self, results: list[PollResult]) -> list[PollSummary | StorageError]:
        turn = self.store.write_turn
        if turn is None or self.alone:  # the database arbitrates writers: write from a thread
            return await asyncio.to_thread(self.store.apply_polls, results)
        # SQLite: write from the loop, taking the write lock only when it is free (waiting for
        # that in a thread): the lock is never held while this loop does something else, and
        # no other thread of this process competes for the GIL while it writes.
        # Pure work, done before the lock is ours. Optional: if one result trips it, apply_polls
        # redoes it and fails that result alone, rather than every result of the batch here.
        with contextlib.suppress(Exception):
            self.store.prepare_polls(results)
        while not turn.try_acquire():
            await asyncio.to_thread(turn.wait_free)
        try:
            return self.store.apply_polls(results)
        finally:
            turn.release()

    async def aclose(self) -> None:
        """Wait until every queued result is written."""
        while lanes := [t for t in (self._task, *self._extra) if t is not None and not t.done()]:
            await asyncio.wait(lanes)


def _settle(
    batch: list[tuple[PollResult, asyncio.Future[PollSummary]]],
    outcomes: list[PollSummary | StorageError],
) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, StorageError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


@contextlib.asynccontextmanager
async def poll_writer(store: StorageType, *, alone: bool = False) -> AsyncIterator[PollWriter]:
    writer = PollWriter(store, alone=alone)
    try:
        yield writer
    finally:
        await writer.aclose()
