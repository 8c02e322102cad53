"""A crash loses nothing (issue 5): SIGKILL the running service again and again, then count.

The service runs as a subprocess against 20 feeds on 5 loopback hosts that grow by one entry per
second each. It is killed 50 times per database. Half of the runs are set to kill themselves
inside the store's write path (``tests.crashrunner``: mid-transaction, just before and just
after the COMMIT of a poll that inserted items, after a claim) unless a timer (up to 3 s) comes
first; the others die at random delays drawn over their first second and a half of polling
(every feed is due then, so commits come back to back), and some during start-up. Each kill is
followed by a restart; a dead process's leases are freed at the next claim
(``storage.holders``; ``tests/test_crash_leases.py`` holds that alone). Then the feeds stop
growing (the cut-off), a clean run catches up and stops on SIGTERM, and the archive must hold
every published entry exactly once, no lease, and pass its integrity check. The seed is printed
(``CRASH_SEED=...`` reruns it); the assertions hold whatever the timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, select

from aggregator.config.settings import load_settings
from aggregator.runtime.daemon import Daemon
from storage.records import ExportFilter
from storage.store import Store
from storage.tables import feeds as feeds_t
from tests.crashrunner import ENV
from tests.crashrunner import POINTS as ALL_POINTS
from tests.growingserver import GrowingFeeds
from tests.serviceproc import ServiceProcess

ROOT = Path(__file__).parent.parent
KILLS = 50
LEASE = 4.0  # seconds; a dead process's feeds come back this soon (a poll takes far less)
POINTS = ALL_POINTS[:4]  # what a service that fetches no pages meets (as it was written for)
PLAIN_RUNS = 4  # cycles that start `python -m aggregator` itself (slower: imports, migrations)


def write_config(path: Path, database: str, urls: list[str]) -> Path:
    feeds = "\n".join(f"  - url: {url}" for url in urls)
    path.write_text(
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        "defaults:\n  fetch_articles: false\n  min_interval: 1s\n  interval: 1s\n"
        f"service:\n  tick: 0.1s\n  lease: {LEASE}s\n  concurrency: 8\n"
        f"feeds:\n{feeds}\n",
        encoding="utf-8",
    )
    return path


class Service(ServiceProcess):
    """One service process, optionally set to kill itself at a point of the write path."""

    def __init__(self, argv: list[str], crash_at: str | None = None) -> None:
        self.crash_at = crash_at
        super().__init__(argv, env={ENV: crash_at})


def plain(config: Path) -> list[str]:
    return [sys.executable, "-m", "aggregator", "--config", str(config), "run"]


def prewarmed(config: Path) -> list[str]:
    return [sys.executable, "-m", "tests.crashrunner", "--config", str(config), "run"]


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


class Crasher:
    """Runs the kill-and-restart cycles; the next process is pre-warmed while one runs."""

    def __init__(self, config: Path, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.tally: Counter[str] = Counter()
        self.warm: Service | None = None

    def crash_spec(self) -> str | None:
        if self.rng.random() < 1 / 2:
            return f"{self.rng.choice(POINTS)}:{self.rng.randint(1, 3)}"
        return None

    def cycle(self, index: int) -> None:
        if index < PLAIN_RUNS:
            service = Service(plain(self.config))
        else:
            service = self.warm or Service(prewarmed(self.config), self.crash_spec())
            self.warm = None
            service.go()
        self.run_until_killed(service)

    def run_until_killed(self, service: Service) -> None:
        """Kill during start-up (migrations, feed sync, first claim) or soon after, when every
        feed is due and the poll commits come back to back; the next process warms meanwhile."""
        if self.rng.random() < 0.15:
            self.prewarm()
            time.sleep(self.rng.uniform(0.0, 0.8))
        else:
            wait_for(service.started, 30)
            self.prewarm()
            time.sleep(self.rng.uniform(0.0, 3.0 if service.crash_at else 1.5))
        service.kill()
        fired = [line for line in service.lines if line.startswith("crashrunner: SIGKILL")]
        self.tally[fired[0].split()[3] if fired else "timer"] += 1
        assert service.proc.returncode == -signal.SIGKILL, service.stderr[-3000:]

    def prewarm(self) -> None:
        if self.warm is None:
            self.warm = Service(prewarmed(self.config), self.crash_spec())

    def close(self) -> None:
        if self.warm is not None:
            assert self.warm.proc.stdin is not None
            self.warm.proc.stdin.close()  # it exits without running
            self.warm.proc.wait(timeout=30)


def stored_guids(url: str) -> tuple[Counter[tuple[str, str]], int]:
    """(feed url, guid) of every sighting, counted, and how many items the archive holds."""
    seen: Counter[tuple[str, str]] = Counter()
    items = 0
    with Store.open(url) as store:
        for item in store.iter_items(ExportFilter()):
            items += 1
            seen.update((s["feed_url"], s["guid"]) for s in item["sightings"])
    return seen, items


def caught_up(store: Store, expected: int, since: datetime) -> Callable[[], bool]:
    """Every published entry stored, and every feed polled after the dead leases expired."""

    def check() -> bool:
        feeds = store.list_feeds()
        polled = all(f.last_polled is not None and f.last_polled > since for f in feeds)
        return polled and sum(f.item_count for f in feeds) >= expected

    return check


def leases(url: str) -> list[tuple[str, str | None, datetime | None]]:
    with Store.open(url) as store, store.db.read() as conn:
        query = select(feeds_t.c.url, feeds_t.c.lease_owner, feeds_t.c.lease_until)
        return [(r.url, r.lease_owner, r.lease_until) for r in conn.execute(query)]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    store_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or time.time_ns() % 2**32)
    print(f"crash test seed: CRASH_SEED={seed}")
    rng = random.Random(seed)
    with GrowingFeeds(feeds=20, hosts=5, entries=400, grow_every=1.0) as server:
        config = write_config(tmp_path / "feeds.yaml", store_url, server.urls)
        crasher = Crasher(config, rng)
        try:
            for index in range(KILLS):
                crasher.cycle(index)
                print(f"{time.monotonic():.1f} cycle {index} {dict(crasher.tally)}", flush=True)
        finally:
            crasher.close()
        print(f"kills by point: {dict(crasher.tally)}")
        published = server.freeze()
        expected = sum(len(guids) for guids in published.values())
        time.sleep(LEASE)  # the leases of the last dead process have expired after this
        final = Service(plain(config))
        with Store.open(store_url) as store:
            done = wait_for(caught_up(store, expected, datetime.now(UTC)), 90, every=0.2)
        final.terminate()
    check_archive(store_url, published, seed, done)
    assert final.proc.returncode == 0, problems(final.stderr)
    assert "Traceback" not in final.stderr, problems(final.stderr)
    assert sum(crasher.tally[p] for p in POINTS) >= 1, crasher.tally  # the hook did fire


def problems(stderr: str) -> str:
    """The warnings, errors and tracebacks of a service's log (not the scheduler's chatter)."""
    chatter = (" INFO ", "maximum number of running instances")
    keep = [line for line in stderr.splitlines() if not any(c in line for c in chatter)]
    return "\n".join(keep[-60:])


def check_archive(url: str, published: dict[str, set[str]], seed: int, done: bool) -> None:
    seen, items = stored_guids(url)
    doubles = {k: n for k, n in seen.items() if n > 1}
    assert not doubles, f"seed {seed}: entries stored more than once: {sorted(doubles)[:10]}"
    for feed, guids in published.items():
        stored = {guid for (f, guid) in seen if f == feed}
        missing, extra = guids - stored, stored - guids
        assert not missing, f"seed {seed} (caught up: {done}): {feed} lost {sorted(missing)[:10]}"
        assert not extra, f"seed {seed}: {feed} has entries past the cut-off: {sorted(extra)[:5]}"
    assert items == len(seen), f"seed {seed}: {items} items for {len(seen)} distinct guids"
    held = [(feed, owner, until) for feed, owner, until in leases(url) if owner or until]
    assert not held, f"seed {seed}: leases left after a clean stop: {held[:5]}"
    with Store.open(url) as store:
        assert store.integrity_check() == []


@pytest.mark.timeout(60)
def test_clean_stop_while_a_claim_is_in_flight_leaves_no_lease(
    store_url: str, tmp_path: Path
) -> None:
    """The race the crash test can only hit by chance, made certain: the claim is slowed (by a
    delay in the engine, not a fake) and SIGTERM's stop event is set while it runs."""
    with GrowingFeeds(feeds=4, hosts=2, entries=50) as server:
        settings = load_settings(write_config(tmp_path / "feeds.yaml", store_url, server.urls))
        with Store.open(store_url) as store:
            store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
            event.listen(store.db.engine, "after_cursor_execute", _slow_claims)
            asyncio.run(_run_then_stop(Daemon(settings, store), after=0.3))
    held = [(feed, owner) for feed, owner, _until in leases(store_url) if owner]
    assert not held, f"leases left after a clean stop: {held}"


def _slow_claims(_conn: object, _cursor: object, statement: str, *_: object) -> None:
    if statement.startswith("UPDATE feeds SET lease_owner") and "feeds.id IN" in statement:
        time.sleep(1.0)


async def _run_then_stop(service: Daemon, after: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(after, stop.set)
    await service.run(stop)
