"""What the service counts for ``GET /metrics`` (Prometheus text format, prometheus-client).

Every polling process counts its own polls, pages, write batches and memory; the main process
serves the sum. Helper processes (``service.processes``) are whole service instances, so the
counts cross processes through prometheus-client's multiprocess mode: each process writes its
values to memory-mapped files in one temporary directory (``$PROMETHEUS_MULTIPROC_DIR``, made
by the main process before any of them imports the library) and a scrape adds them up. That
was chosen over sending deltas to the main process: no channel between processes to keep, a
helper's counts survive its crash and restart, and a scrape never waits for a helper. Counters
and histograms are summed over processes; memory is one series per live process.

With ``service.listen`` unset the service uses the base ``Recorder``, which records nothing,
and prometheus-client is never imported.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Recorder:
    """The runtime's counting calls; this one records nothing (no ``service.listen``)."""

    def poll(self, status: str, http_status: int | None, new_items: int, seconds: float) -> None:
        """One feed poll finished (written): its result, HTTP status, items stored, latency."""

    def page(self, outcome: str, seconds: float) -> None:
        """One article page finished: ``ok``, ``retry`` (failed, tried again later) or
        ``gave_up`` (its last attempt failed: the item keeps the feed's content)."""

    def batch(self, size: int) -> None:
        """The poll writer committed ``size`` poll results in one transaction."""

    def takeovers(self, count: int) -> None:
        """This process took ``count`` feeds whose lease another holder had (dead or expired)."""

    def reload(self, ok: bool) -> None:
        """A configuration reload was applied (``ok``) or refused."""

    def tick(self) -> None:
        """Once per dispatch tick: refresh what is sampled rather than counted (memory)."""


def resident_bytes() -> int:
    """This process's resident memory now (Linux), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PromRecorder(Recorder):
    """Records into prometheus-client metrics (in the multiprocess files when they are set up).

    A write to a multiprocess file costs a few microseconds (a lock and an mmap store), so the
    counters are added up here and written once per tick (``tick``, also before a scrape of
    this process's own registry); the histograms are written as they come."""

    def __init__(self, process: str, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.polls = Counter("aggregator_polls", "Feed polls by result and HTTP status",
                             ["result", "http_status"], registry=reg)
        self.items = Counter("aggregator_items_stored", "New items stored by polls", registry=reg)
        self.pages = Counter("aggregator_articles", "Article page fetches by outcome",
                             ["outcome"], registry=reg)
        self.poll_seconds = Histogram("aggregator_poll_duration_seconds",
                                      "Feed poll latency: fetch, parse and write",
                                      buckets=LATENCY_BUCKETS, registry=reg)
        self.page_seconds = Histogram("aggregator_page_duration_seconds",
                                      "Article page latency: fetch, extract and write",
                                      buckets=LATENCY_BUCKETS, registry=reg)
        self.batches = Histogram("aggregator_write_batch_size",
                                 "Poll results per write transaction (group commit)",
                                 buckets=BATCH_BUCKETS, registry=reg)
        self.taken = Counter("aggregator_lease_takeovers",
                             "Feeds claimed from a holder that died or let its lease expire",
                             registry=reg)
        self.reloads = Counter("aggregator_config_reloads", "Configuration reloads applied",
                               registry=reg)
        self.reload_failures = Counter("aggregator_config_reload_failures",
                                       "Configuration reloads refused (the old one kept running)",
                                       registry=reg)
        self.memory = Gauge("aggregator_process_resident_memory_bytes",
                            "Resident memory of each polling process", ["process"],
                            multiprocess_mode="liveall", registry=reg)
        self.process = process
        self._polls: dict[tuple[str, int | None], int] = {}  # counted since the last tick
        self._items = 0
        self._pages: dict[str, int] = {}
        self.tick()

    def poll(self, status: str, http_status: int | None, new_items: int, seconds: float) -> None:
        key = (status, http_status)
        self._polls[key] = self._polls.get(key, 0) + 1
        self._items += new_items
        self.poll_seconds.observe(seconds)

    def page(self, outcome: str, seconds: float) -> None:
        self._pages[outcome] = self._pages.get(outcome, 0) + 1
        self.page_seconds.observe(seconds)

    def batch(self, size: int) -> None:
        self.batches.observe(size)

    def takeovers(self, count: int) -> None:
        if count:
            self.taken.inc(count)

    def reload(self, ok: bool) -> None:
        (self.reloads if ok else self.reload_failures).inc()

    def tick(self) -> None:
        self.flush()
        self.memory.labels(self.process).set(resident_bytes())

    def flush(self) -> None:
        """Write the counts added up since the last flush. On the recording thread (the loop)."""
        polls, self._polls = self._polls, {}
        for (status, http_status), count in polls.items():
            self.polls.labels(status, str(http_status) if http_status else "none").inc(count)
        pages, self._pages = self._pages, {}
        for outcome, count in pages.items():
            self.pages.labels(outcome).inc(count)
        if self._items:
            items, self._items = self._items, 0
            self.items.inc(items)


@dataclass(frozen=True, slots=True)
class ArchiveGauges:
    """What the main process reads from the database at a scrape (``Store.vitals``)."""

    database_bytes: int | None
    feeds_active: int
    feeds_overdue: int  # next poll more than one interval in the past
    oldest_success_age: float | None  # seconds since the stalest feed's last good poll
    last_tick_age: float | None  # seconds since the dispatch tick last ran


class ArchiveCollector:
    """Gauges read at scrape time in the main process (None: the database did not answer)."""

    def __init__(self, source: ArchiveGauges | None) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        gauges = self.source
        if gauges is None:
            return
        values = [
            ("aggregator_database_size_bytes", "Size of the database (SQLite: file and WAL)",
             gauges.database_bytes),
            ("aggregator_feeds_active", "Configured feeds being polled", gauges.feeds_active),
            ("aggregator_feeds_overdue", "Feeds whose next poll is more than one interval late",
             gauges.feeds_overdue),
            ("aggregator_oldest_successful_poll_age_seconds",
             "Seconds since the stalest active feed last polled successfully",
             gauges.oldest_success_age),
            ("aggregator_dispatch_tick_age_seconds", "Seconds since the dispatch tick last ran",
             gauges.last_tick_age),
        ]  # fmt: skip
        for name, doc, value in values:
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=value)


def prepare_multiprocess() -> Path | None:
    """In the main process, before prometheus-client is first imported: a fresh directory for
    every process's files, inherited by the helpers spawned later. None if the library was
    imported already (then this process's own registry is served)."""
    import sys

    if "prometheus_client" in sys.modules and MULTIPROC_ENV not in os.environ:
        return None
    path = Path(tempfile.mkdtemp(prefix="aggregator-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def finish_multiprocess(path: Path | None) -> None:
    """Remove the directory made by ``prepare_multiprocess``."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == str(path):
            del os.environ[MULTIPROC_ENV]


def forget_dead(directory: Path) -> None:
    """Drop the live-only series (memory) of processes that exited, e.g. a restarted helper."""
    from prometheus_client import multiprocess

    for pid in _pids(directory.glob("gauge_live*_*.db")):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's: not one of ours, leave it
            pass


def _pids(files: Iterable[Path]) -> set[int]:
    pids = set()
    for file in files:
        tail = file.stem.rpartition("_")[2]
        if tail.isdigit():
            pids.add(int(tail))
    return pids


def exposition(recorder: PromRecorder, directory: Path | None, gauges: ArchiveGauges | None
               ) -> bytes:  # fmt: skip
    """The text a scrape gets: every process's counts (or this one's) plus the archive gauges.
    Reads files: call it from a thread, after ``recorder.flush()`` on the loop."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    counted = recorder.registry
    if directory is not None:
        forget_dead(directory)
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted, str(directory))  # type: ignore[no-untyped-call]
    archive = CollectorRegistry()
    archive.register(ArchiveCollector(gauges))
    return generate_latest(counted) + generate_latest(archive)
