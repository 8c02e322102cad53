"""WriteTurn: one SQLite writer at a time across threads and processes; its holder re-enters."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path

from storage.turn import WriteTurn


def _hold(path: str, seconds: float, started: object) -> None:
    turn = WriteTurn(path)
    with turn.held():
        started.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


@contextmanager
def held_elsewhere(path: str, seconds: float = 1.0) -> Iterator[BaseProcess]:
    """Another process holds the turn for ``seconds`` from when this yields."""
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_hold, args=(path, seconds, started))
    proc.start()
    try:
        assert started.wait(30)
        yield proc
    finally:
        proc.join(30)


def test_another_process_waits_for_the_turn(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writer.lock")
    with held_elsewhere(path) as proc:
        begun = time.monotonic()
        with WriteTurn(path).held():
            waited = time.monotonic() - begun
    assert waited > 0.5, "the turn was granted while another process held it"
    assert proc.exitcode == 0


def test_threads_take_turns_and_the_holder_reenters(tmp_path: Path) -> None:
    turn = WriteTurn(str(tmp_path / "db-writer.lock"))
    inside = 0
    most = 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        for _ in range(20):
            # A nested transaction of the same writer does not deadlock.
            with turn.held(), turn.held():
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1


def test_try_acquire_never_waits_and_wait_free_waits_for_the_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writer.lock")
    turn = WriteTurn(path)
    with held_elsewhere(path):
        assert not turn.try_acquire()  # held by the other process: refused at once
        begun = time.monotonic()
        turn.wait_free()
        assert time.monotonic() - begun > 0.5
        assert turn.try_acquire()
        assert turn.held_here
        with turn.held():  # the holder re-enters
            pass
        turn.release()
        assert not turn.held_here
