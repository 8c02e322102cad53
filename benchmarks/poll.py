"""Benchmark: a first poll (all new), a second (all unchanged), ours against ``reader``; not a test.

The feeds come from :mod:`benchmarks.feedserver` (its own process, feeds spread over many loopback
addresses, by default one feed per address). By default each pass of each system is a whole
process, timed from its start as cron would run it, on our shipped defaults
(:mod:`benchmarks.poll_whole`). With ``--in-process``, each system runs in one subprocess that
times both passes inside it (no start-up; our helper processes stay up between passes); its peak
memory (``getrusage(RUSAGE_SELF).ru_maxrss``: the peak RSS of that process, all threads, plus
that of its worker processes if it has any) is its own. Article fetching is off in both modes;
in-process, our per-host minimum gap is 0 (reader has none)::

    python -m benchmarks.poll                      # 1,000 feeds × 20 entries: ours (SQLite), reader
    python -m benchmarks.poll --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m benchmarks.poll --feeds 10 --entries 3 --systems ours   # what the smoke test runs

It must not touch any database but the fresh ones it creates (a temporary SQLite file, or a new
schema that it drops afterwards on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/poll.py`
    sys.path.insert(0, str(ROOT))

from benchmarks.feedserver import FeedServer  # noqa: E402

PASSES = ("first", "second")


@dataclass
class PassResult:
    """One pass of one system, as measured inside that system's process."""

    wall: float
    new_items: int
    feeds: int
    ok: int
    not_modified: int
    failed: int
    cpu: float  # user + system seconds of the measuring process, all threads
    peak_rss_mib: float  # ru_maxrss at the end of the pass (a running peak)
    server: dict[str, int] = field(default_factory=dict)  # responses by status, from the server

    @property
    def items_per_s(self) -> float:
        return self.new_items / self.wall if self.wall else 0.0

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.wall if self.wall else 0.0


# ---------------------------------------------------------------- inside a system's subprocess

def live_children() -> tuple[int, float, float]:
    """How many children this process has, their CPU seconds and summed peak RSS (MiB), from /proc.

    Worker processes (a parse or writer pool) do the measured system's work too; getrusage sees
    them only once they have exited and been waited for.
    """
    count, cpu, rss = 0, 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            name_end = text.rindex(")")
            fields = text[name_end + 2 :].split()
            if int(fields[1]) != os.getpid():
                continue
            cmdline = (stat.parent / "cmdline").read_bytes()
            if b"resource_tracker" in cmdline or b"forkserver" in cmdline:
                continue  # multiprocessing's helpers live as long as we do; they do no work
            status = (stat.parent / "status").read_text()
        except OSError:
            continue  # it exited meanwhile
        count += 1
        cpu += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        peak = re.search(r"VmHWM:\s+(\d+) kB", status)
        rss += int(peak[1]) / 1024 if peak else 0.0
    return count, cpu, rss


def settle_children(timeout: float = 15.0) -> None:
    """Wait until worker processes that a pass shut down have exited and been reaped.

    A pool closed with ``shutdown(wait=False)`` finishes after the pass returns; without this,
    its CPU would land in the next pass's figures.
    """
    deadline = time.monotonic() + timeout
    while live_children()[0] and time.monotonic() < deadline:
        time.sleep(0.1)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class ChildPeak:
    """The largest summed peak RSS of this process's live children, sampled 4 times a second.

    Not getrusage(RUSAGE_CHILDREN): it gives only the largest reaped child, and counts a
    short-lived forked helper at its parent's size.
    """

    def __init__(self, every: float = 0.25) -> None:
        self.peak = 0.0
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, live_children()[2])
            if self._stop.wait(self.every):
                self.peak = max(self.peak, live_children()[2])
                return

    def __enter__(self) -> ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children, live or reaped."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total + live_children()[1]


def server_status(stats_url: str) -> dict[str, int]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(stats_url, timeout=10) as resp:
        status: dict[str, int] = json.load(resp)["status"]
        return status


@contextlib.contextmanager
def profiled(prefix: str | None) -> Iterator[None]:
    """Sample this process with py-spy while the block runs (py-spy writes when interrupted).

    py-spy is started detached (by a shell that exits at once), so that it is not our child and
    its CPU and memory stay out of the figures.
    """
    if not prefix:
        yield
        return
    spy = (f"py-spy record --pid {os.getpid()} --subprocesses --rate 200 --gil --threads "
           "--format raw "
           f"--output {shlex.quote(prefix + '.txt')}")
    started = subprocess.run(["sh", "-c", f"{spy} >/dev/null 2>&1 & echo $!"], check=True,
                             capture_output=True, text=True)
    pid = int(started.stdout)
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # it stopped by itself already
            os.kill(pid, signal.SIGINT)
        wait_gone(pid, 60.0)


def wait_gone(pid: int, timeout: float) -> None:
    """Wait for a process that is not our child to exit (gone, or a zombie nobody reaps yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat[stat.rindex(")") + 2] == "Z":
            return
        time.sleep(0.1)


@dataclass(frozen=True)
class Job:
    """What a system's subprocess is asked to do."""

    urls: list[str]
    stats_url: str
    profile: str | None  # path prefix for py-spy output, or None

    def passes(self, run: Callable[[], tuple[int, int, int, int]]) -> list[PassResult]:
        results = [self.measure(run, f"{self.profile}-{name}" if self.profile else None)
                   for name in PASSES]
        for earlier, later in itertools.pairwise(results):  # a running peak, like ru_maxrss
            later.peak_rss_mib = max(later.peak_rss_mib, earlier.peak_rss_mib)
        return results

    def measure(self, run: Callable[[], tuple[int, int, int, int]], prof: str | None) -> PassResult:
        """Time ``run`` (it returns new items, ok, not modified, failed); diff server counts."""
        before, cpu0 = server_status(self.stats_url), cpu_seconds()
        with profiled(prof), ChildPeak() as children:
            start = time.perf_counter()
            new_items, ok, not_modified, failed = run()
            wall = time.perf_counter() - start
        settle_children()  # (not timed) the pass's worker processes: their CPU belongs to it
        cpu = cpu_seconds() - cpu0
        after = server_status(self.stats_url)
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        return PassResult(wall, new_items, len(self.urls), ok, not_modified, failed, cpu,
                          peak_rss_mib() + children.peak, delta)


def run_reader(job: Job, workdir: Path, workers: int) -> tuple[float, list[PassResult]]:
    from reader import make_reader

    reader = make_reader(str(workdir / "reader.sqlite"))
    for url in job.urls:
        reader.add_feed(url)

    def one_pass() -> tuple[int, int, int, int]:
        entries_before = reader.get_entry_counts().total or 0
        reader.update_feeds(workers=workers, scheduled=False)
        new = (reader.get_entry_counts().total or 0) - entries_before
        broken = reader.get_feed_counts(broken=True).total or 0
        return new, -1, -1, broken  # reader does not say which feeds were 304: see server counts

    setup = peak_rss_mib()
    results = job.passes(one_pass)
    reader.close()
    return setup, results


@contextlib.contextmanager
def fresh_database(database: str | None, workdir: Path) -> Iterator[str]:
    """A SQLite file in ``workdir``, or a new PostgreSQL schema that is dropped afterwards."""
    if not database:
        yield f"sqlite:///{workdir / 'archive.db'}"
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in database else "?"
    try:
        yield f"{database}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def run_ours(
    job: Job, database: str, service: dict[str, int]
) -> tuple[float, list[PassResult]]:
    from aggregator.config.settings import Settings
    from aggregator.runtime.oneshot import OneShot
    from aggregator.runtime.worker import Totals
    from storage.store import Store

    settings = Settings.model_validate({
        "database": database,
        "http": {"allow_private_networks": True, "per_host_delay": 0, "respect_robots": False},
        "defaults": {"fetch_articles": False},
        "service": service,
        "feeds": [{"url": url} for url in job.urls],
    })
    store = Store.open(settings.database)
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))

    # One service object for both passes, as a long-running service is: helper processes
    # (service.processes) start during the first pass, which pays for their start-up.
    service = OneShot(settings, store)

    def one_pass() -> tuple[int, int, int, int]:
        service.totals = Totals()
        totals = asyncio.run(service.poll_once())
        for error in list(totals.errors)[:5]:
            print(f"ours: {error}", file=sys.stderr)
        return totals.new_items, totals.ok, totals.not_modified, totals.failed

    setup = peak_rss_mib()
    try:
        return setup, job.passes(one_pass)
    finally:
        service.close()


def worker_main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("reader").setLevel(logging.ERROR)  # it warns on every feed (bozo)
    job = Job(json.loads(Path(args.urls).read_text()), args.stats_url, args.profile)
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        if args.run == "reader":
            setup, results = run_reader(job, Path(tmp), args.workers)
        else:
            with fresh_database(args.database, Path(tmp)) as url:
                setup, results = run_ours(job, url, json.loads(args.service))
    print(json.dumps({"setup_rss_mib": setup, "passes": [asdict(r) for r in results]}))


# ---------------------------------------------------------------- the parent: orchestrate, print

@dataclass
class SystemRun:
    name: str
    setup_rss_mib: float  # peak RSS before the first pass: interpreter, imports, feeds added
    passes: list[PassResult]


def run_system(name: str, argv: list[str]) -> SystemRun:
    cmd = [sys.executable, "-m", "benchmarks.poll", *argv]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"setup_rss_mib"')]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"poll benchmark: {name} failed (exit {proc.returncode})")
    data = json.loads(lines[-1])
    return SystemRun(name, data["setup_rss_mib"], [PassResult(**p) for p in data["passes"]])


def profile_argv(args: argparse.Namespace, name: str) -> list[str]:
    if not args.profile:
        return []
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    stem = name.replace(" (", "-").replace(")", "").lower()
    return ["--profile", str(Path(args.profile).resolve() / stem)]


def systems_to_run(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    runs: list[tuple[str, list[str]]] = []
    for system in args.systems.split(","):
        if system == "reader":
            runs.append(("reader", ["--run", "reader", "--workers", str(args.workers)]))
        elif system == "ours":
            common = ["--run", "ours", "--service", json.dumps(service_overrides(args))]
            runs.append(("ours (SQLite)", common))
            if args.database:
                runs.append(("ours (PostgreSQL)", [*common, "--database", args.database]))
        else:
            raise SystemExit(f"poll benchmark: unknown system {system!r} (ours, reader)")
    return runs


def service_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The ``service:`` keys given on the command line; the others keep the shipped defaults."""
    given = (("concurrency", args.concurrency), ("processes", args.processes),
             ("parse_workers", args.parse_workers))
    return {key: value for key, value in given if value is not None}


def table(runs: list[SystemRun]) -> list[str]:
    head = (f"{'system':<18} {'pass':<7} {'wall s':>7} {'items/s':>8} {'feeds/s':>8} "
            f"{'200':>5} {'304':>5} {'fail':>5} {'CPU s':>6} {'peak RSS MiB':>12}")
    rows = [head, "-" * len(head)]
    for run in runs:
        for name, r in zip(PASSES, run.passes, strict=True):
            fails = r.failed if r.failed >= 0 else 0
            rows.append(
                f"{run.name:<18} {name:<7} {r.wall:>7.2f} {r.items_per_s:>8.0f} "
                f"{r.feeds_per_s:>8.0f} {r.server.get('200', 0):>5} {r.server.get('304', 0):>5} "
                f"{fails:>5} {r.cpu:>6.2f} {r.peak_rss_mib:>12.1f}")
    return rows


def ratios(runs: list[SystemRun]) -> list[str]:
    by_name = {run.name: run for run in runs}
    reader = by_name.get("reader")
    if reader is None:
        return []
    lines = []
    for run in runs:
        if run is reader:
            continue
        first = run.passes[0].items_per_s / max(reader.passes[0].items_per_s, 1e-9)
        second = run.passes[1].feeds_per_s / max(reader.passes[1].feeds_per_s, 1e-9)
        mem = run.passes[1].peak_rss_mib / max(reader.passes[1].peak_rss_mib, 1e-9)
        cpu = [r.cpu / max(o.cpu, 1e-9) for r, o in zip(run.passes, reader.passes, strict=True)]
        lines.append(f"ratio {run.name} / reader: first pass items/s ×{first:.2f}, "
                     f"second pass feeds/s ×{second:.2f}, peak RSS ×{mem:.2f}; CPU seconds "
                     f"×{cpu[0]:.2f} and ×{cpu[1]:.2f} (less sensitive to a busy machine)")
    return lines


def main_parent(args: argparse.Namespace) -> None:
    hosts = min(args.hosts, args.feeds)
    print(f"poll benchmark: {args.feeds} feeds × {args.entries} entries on {hosts} loopback "
          f"hosts, {args.latency * 1000:.0f} ms latency per response, gzip, ETag/Last-Modified")
    service = service_overrides(args) or "the shipped defaults"
    if not args.in_process:
        print(f"whole processes, as cron runs them. ours: `poll --once`, service {service}, "
              f"article fetching off; reader: update_feeds(workers={args.workers}, "
              "scheduled=False)")
        main_whole_parent(args)
        return
    print(f"in one process per system. ours: service {service}, at most 2 "
          f"requests in flight per host, per-host "
          f"delay 0 s (reader has no per-host gap), article fetching off; reader: workers "
          f"{args.workers}. Peak memory = getrusage ru_maxrss of each system's own process "
          "(+ its child processes, if any).")
    runs = []
    load_before = os.getloadavg()[0]
    with FeedServer(feeds=args.feeds, entries=args.entries, latency=args.latency,
                    hosts=args.hosts) as server, tempfile.TemporaryDirectory() as tmp:
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(server.urls))
        stats_url = f"http://127.42.0.1:{server.port}/_stats"
        for name, argv in systems_to_run(args):
            runs.append(run_system(name, [*argv, "--urls", str(urls_file), "--stats-url",
                                          stats_url, *profile_argv(args, name)]))
        server_cpu = server.stats().get("cpu", 0.0)
    setup = ", ".join(f"{r.name} {r.setup_rss_mib:.1f} MiB" for r in runs)
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    lines = [*table(runs), f"RSS before the first pass: {setup}", *ratios(runs),
             f"feed server CPU (its own process): {server_cpu:.2f} s; load average {load} "
             f"({os.cpu_count()} cores: above that, other work competed for the CPU)"]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "runs": [{"name": r.name, "passes": [asdict(p) for p in r.passes]}
                                          for r in runs]}, indent=2))


def main_whole_parent(args: argparse.Namespace) -> None:
    from benchmarks.poll_whole import main_whole

    load_before = os.getloadavg()
    with FeedServer(feeds=args.feeds, entries=args.entries, latency=args.latency,
                    hosts=args.hosts) as server, tempfile.TemporaryDirectory() as tmp:
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(server.urls))
        lines, raw = main_whole(args, server, Path(tmp), urls_file, args.database)
        server_cpu = server.stats().get("cpu", 0.0)
    after = os.getloadavg()
    print("\n".join([*lines, f"feed server CPU (its own process): {server_cpu:.2f} s; load "
                     f"average {load_before[0]:.2f} {load_before[1]:.2f} before, {after[0]:.2f} "
                     f"{after[1]:.2f} after (1 and 5 min; {os.cpu_count()} cores)"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **raw,
                                               "load": [load_before, after]}, indent=2))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--hosts", type=int, default=1000,
                   help="loopback addresses to spread feeds over (default: one per feed)")
    p.add_argument("--latency", type=float, default=0.02, help="seconds per response")
    p.add_argument("--systems", default="ours,reader", help="comma-separated: ours, reader")
    p.add_argument("--database", help="also run ours on this PostgreSQL (a fresh schema in it)")
    p.add_argument("--in-process", action="store_true",
                   help="time both passes inside one process per system (no start-up)")
    p.add_argument("--concurrency", type=int, help="ours: service.concurrency (default: shipped)")
    p.add_argument("--processes", type=int, help="ours: service.processes (default: shipped)")
    p.add_argument("--parse-workers", type=int,
                   help="ours: service.parse_workers (0: parse in threads; N: N processes)")
    p.add_argument("--workers", type=int, default=16, help="reader: update_feeds workers")
    p.add_argument("--profile", help="directory for py-spy profiles, one per system and pass "
                   "(collapsed stacks of the thread holding the GIL; needs py-spy)")
    p.add_argument("--steady", type=float, default=0.0,
                   help="whole processes: a third pass after this fraction of the feeds gained "
                   "one entry each (0.1: a tenth), the others unchanged")
    p.add_argument("--repeat", type=int, default=1,
                   help="whole processes: run both passes of every system this many rounds, "
                   "each on fresh databases, and report each ratio's median")
    p.add_argument("--json", help="also write the figures to this file")
    # Internal: the per-system subprocess.
    p.add_argument("--run", choices=("ours", "reader"), help=argparse.SUPPRESS)
    p.add_argument("--urls", help=argparse.SUPPRESS)
    p.add_argument("--stats-url", help=argparse.SUPPRESS)
    p.add_argument("--service", default="{}", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.run:
        worker_main(args)
    else:
        main_parent(args)


if __name__ == "__main__":
    main()
