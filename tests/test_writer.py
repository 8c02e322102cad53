"""PollWriter: polls that finish together share one transaction, and each still fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

import aggregator.runtime.writer as writer_module
from aggregator.runtime.writer import PollWriter
from storage.errors import LeaseLost, StorageError
from storage.records import FeedConfig, PollResult, PollSummary
from storage.store import Store
from tests.dbfixtures import T0, entry, poll_result


class CountingStore:
    """The real store, with its batches counted (and optionally held up)."""

    def __init__(self, store: Store, gate: threading.Event | None = None) -> None:
        self.store = store
        self.write_turn = store.write_turn
        self.batches: list[int] = []
        self.gate = gate

    def prepare_polls(self, results: Sequence[PollResult]) -> None:
        self.store.prepare_polls(results)

    def apply_polls(self, results: Sequence[PollResult]) -> list[PollSummary | StorageError]:
        self.batches.append(len(results))
        if self.gate is not None:
            self.gate.wait(10)
        return self.store.apply_polls(results)


def claimed(store: Store, count: int) -> list:  # type: ignore[type-arg]
    urls = [f"https://feeds.example/{n}.xml" for n in range(count)]
    store.sync_feeds([FeedConfig(url=u) for u in urls], T0)
    feeds = store.claim_due(T0, count, "w1", 300)
    assert len(feeds) == count
    return sorted(feeds, key=lambda f: f.url)


def test_concurrent_polls_share_transactions(store: Store) -> None:
    feeds = claimed(store, 30)
    counting = CountingStore(store)

    async def main() -> list[PollSummary]:
        writer = PollWriter(counting, max_batch=8)  # type: ignore[arg-type]
        results = [poll_result(f, T0, [entry(f"{f.id}-{n}") for n in range(3)]) for f in feeds]
        summaries = await asyncio.gather(*(writer.write(r) for r in results))
        await writer.aclose()
        return summaries

    summaries = asyncio.run(main())
    assert [s.new_items for s in summaries] == [3] * 30
    assert sum(counting.batches) == 30
    assert len(counting.batches) < 30 and max(counting.batches) <= 8
    assert all(f.last_polled == T0 for f in store.list_feeds())


def test_a_lost_lease_fails_only_its_own_write(store: Store) -> None:
    feeds = claimed(store, 3)

    async def main() -> list[PollSummary | BaseException]:
        writer = PollWriter(store)
        results = [poll_result(f, T0, [entry(f.id)]) for f in feeds]
        results[1] = poll_result(feeds[1], T0, [entry("x")], lease_owner="someone-else")
        out = await asyncio.gather(*(writer.write(r) for r in results), return_exceptions=True)
        await writer.aclose()
        return out

    first, lost, third = asyncio.run(main())
    assert isinstance(first, PollSummary) and first.new_items == 1
    assert isinstance(lost, LeaseLost)
    assert isinstance(third, PollSummary) and third.new_items == 1


def test_a_poll_cancelled_while_queued_writes_nothing(store: Store) -> None:
    feeds = claimed(store, 2)
    gate = threading.Event()
    # The first batch is held: on SQLite waiting for its turn to write (taken by this test),
    # on PostgreSQL inside the store's thread.
    turn = store.write_turn
    if turn is not None:
        turn.acquire()
    counting = CountingStore(store, None if turn is not None else gate)

    async def main() -> None:
        writer = PollWriter(counting)  # type: ignore[arg-type]
        busy = asyncio.create_task(writer.write(poll_result(feeds[0], T0, [entry(1)])))
        await asyncio.sleep(0.2)
        assert not busy.done()
        queued = asyncio.create_task(writer.write(poll_result(feeds[1], T0, [entry(2)])))
        await asyncio.sleep(0.05)
        queued.cancel()
        gate.set()
        if turn is not None:
            await asyncio.to_thread(turn.release)
        assert (await busy).new_items == 1
        with pytest.raises(asyncio.CancelledError):
            await queued
        await writer.aclose()

    asyncio.run(main())
    assert counting.batches == [1]
    polled = {f.url: f.last_polled for f in store.list_feeds()}
    assert polled[feeds[0].url] is not None and polled[feeds[1].url] is None


def test_results_of_polls_still_fetching_wait_to_share_a_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While more results are expected, a batch waits until it is full (or LINGER passes)."""
    monkeypatch.setattr(writer_module, "LINGER", 60.0)  # only a full batch ends the wait here
    feeds = claimed(store, 8)
    counting = CountingStore(store)

    async def main() -> list[PollSummary]:
        writer = PollWriter(counting, max_batch=8)  # type: ignore[arg-type]
        writer.expecting = lambda: True
        results = [poll_result(f, T0, [entry(f.id)]) for f in feeds]
        first = asyncio.create_task(writer.write(results[0]))
        for _ in range(5):
            await asyncio.sleep(0)  # the writer has started, and waits for more
        rest = [asyncio.create_task(writer.write(r)) for r in results[1:]]
        summaries = await asyncio.gather(first, *rest)
        await writer.aclose()
        return summaries

    assert [s.new_items for s in asyncio.run(main())] == [1] * 8
    assert counting.batches == [8]


def test_nothing_waits_when_no_more_results_are_expected(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "LINGER", 60.0)
    feeds = claimed(store, 2)
    counting = CountingStore(store)
    fetching = [True]

    async def main() -> None:
        writer = PollWriter(counting)  # type: ignore[arg-type]
        writer.expecting = lambda: fetching[0]
        fetching[0] = False  # the last poll: written at once
        assert (await writer.write(poll_result(feeds[0], T0, [entry(1)]))).new_items == 1
        await writer.aclose()

    asyncio.run(main())
    assert counting.batches == [1]


def test_a_result_cancelled_while_its_batch_waits_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "LINGER", 0.3)
    feeds = claimed(store, 1)
    counting = CountingStore(store)

    async def main() -> None:
        writer = PollWriter(counting)  # type: ignore[arg-type]
        writer.expecting = lambda: True
        queued = asyncio.create_task(writer.write(poll_result(feeds[0], T0, [entry(1)])))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await writer.aclose()

    asyncio.run(main())
    assert counting.batches == []  # no transaction at all, not even an empty one
    assert store.list_feeds()[0].last_polled is None


class HeldStore:
    """A store where the database arbitrates writers (``write_turn`` None, as PostgreSQL): each
    batch is held until released, and how many are written at once is recorded."""

    write_turn = None

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.release = threading.Semaphore(0)
        self.batches: list[int] = []
        self.now = self.most = 0

    def prepare_polls(self, results: Sequence[PollResult]) -> None:
        pass

    def apply_polls(self, results: Sequence[PollResult]) -> list[PollSummary | StorageError]:
        with self.lock:
            self.batches.append(len(results))
            self.now += 1
            self.most = max(self.most, self.now)
        self.release.acquire(timeout=10)
        with self.lock:
            self.now -= 1
        return [PollSummary(new_items=1) for _ in results]


def test_a_full_batch_is_written_beside_a_batch_in_flight_where_the_database_arbitrates(
    store: Store,
) -> None:
    """PostgreSQL: while one transaction is in flight, a full batch starts a second (the server
    runs one while this process builds the other); a partial batch waits for a free lane."""
    feeds = claimed(store, 10)
    held = HeldStore()

    async def main() -> list[PollSummary]:
        writer = PollWriter(held, max_batch=4)  # type: ignore[arg-type]
        results = [poll_result(f, T0, [entry(f.id)]) for f in feeds]
        tasks = [asyncio.create_task(writer.write(r)) for r in results[:4]]
        await asyncio.sleep(0.1)  # the first batch is in flight
        tasks += [asyncio.create_task(writer.write(r)) for r in results[4:]]
        await asyncio.sleep(0.1)
        assert held.batches == [4, 4]  # the second full batch did not wait; the rest does
        for _ in range(3):
            await asyncio.to_thread(held.release.release)
        summaries = await asyncio.gather(*tasks)
        await writer.aclose()
        return summaries

    assert [s.new_items for s in asyncio.run(main())] == [1] * 10
    assert held.batches == [4, 4, 2] and held.most == 2
