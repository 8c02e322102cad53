"""The poll benchmark's whole-process mode: each pass of each system is a process, as cron runs it.

Ours is ``python -m aggregator -c CFG poll --once`` on the shipped defaults (only what the
benchmark needs is set: loopback feeds allowed, article fetching off). Reader is
:mod:`benchmarks.reader_pass`: ``make_reader`` and ``update_feeds`` with its defaults but
``workers`` (16, our shipped ``concurrency``) and ``scheduled=False`` (else its second pass
would skip every feed as not yet due). Both databases are created and the feeds added beforehand,
in a process of their own that is not timed. Each pass is timed from the ``fork`` to the exit;
its CPU seconds (user + system, of the process and the helper processes it waited for) and the
main process's peak RSS come from ``os.wait4``; helpers' peaks (``VmHWM``) are sampled from
``/proc`` and added, so the RSS figure is the sum of every process's peak.
"""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PASSES = ("first", "second")
WITH_STEADY = (*PASSES, "steady")  # --steady: a third pass once a fraction of the feeds grew
SHOWN = {"first": "first", "second": "unchanged", "steady": "steady"}
SUMMARY = re.compile(r"(\d+) ok, (\d+) not modified, (\d+) failed.*?; (\d+) new items")


@dataclass
class Measured:
    """One process (and its descendants) from fork to exit."""

    wall: float
    user: float
    sys: float
    main_rss_mib: float  # ru_maxrss of the main process (and the largest waited-for helper)
    peak_rss_mib: float  # the main process's peak plus each helper's peak
    processes: int  # the main process and the helpers seen
    status: int
    output: str

    @property
    def cpu(self) -> float:
        return self.user + self.sys


class DescendantPeaks:
    """Each descendant's peak RSS (``VmHWM``), sampled from /proc while the process runs."""

    def __init__(self, root: int, every: float = 0.2) -> None:
        self.root = root
        self.every = every
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2 :].split()[1])
        family = {self.root}
        for _ in range(4):  # helpers, and their own helpers (multiprocessing's tracker)
            family |= {pid for pid, ppid in parents.items() if ppid in family}
        for pid in family - {self.root}:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if peak := re.search(r"VmHWM:\s+(\d+) kB", status):
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), int(peak[1]) / 1024)

    def __enter__(self) -> DescendantPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_process(argv: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` to its end; wall time from before the fork to the reaping."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        with DescendantPeaks(proc.pid) as helpers:
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
        out.seek(0)
        output = out.read()
    main = usage.ru_maxrss / 1024  # KiB on Linux
    return Measured(wall, usage.ru_utime, usage.ru_stime, main,
                    main + sum(helpers.peaks.values()), 1 + len(helpers.peaks),
                    proc.returncode, output)


def child_env() -> dict[str, str]:
    """Our code from this tree, whatever is installed; nothing else changed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# ---------------------------------------------------------------- the two systems


@dataclass
class Side:
    """One system's set-up and the command of one pass."""

    name: str
    argv: list[str]
    database: str
    setup: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def our_config(path: Path, database: str, urls: list[str], service: dict[str, int]) -> None:
    """The shipped defaults, but for what the benchmark needs (JSON is YAML)."""
    config: dict[str, Any] = {
        "database": database,
        "http": {"allow_private_networks": True},  # the feeds are on loopback addresses
        "defaults": {"fetch_articles": False},
        "feeds": [{"url": url} for url in urls],
    }
    if service:
        config["service"] = service
    path.write_text(json.dumps(config, indent=1))


def ours(workdir: Path, database: str, urls: list[str], service: dict[str, int],
         name: str) -> Side:  # fmt: skip
    config = workdir / f"{name.split()[-1].strip('()').lower()}.yaml"
    our_config(config, database, urls, service)
    argv = [sys.executable, "-m", "aggregator", "-c", str(config), "poll", "--once"]
    setup = [sys.executable, "-m", "benchmarks.poll_whole", "setup-ours", str(config)]
    return Side(name, argv, database, setup)


def reader(workdir: Path, urls_file: Path, workers: int) -> Side:
    db = workdir / "reader.sqlite"
    argv = [sys.executable, str(ROOT / "benchmarks" / "reader_pass.py"), str(db),
            "--workers", str(workers)]
    setup = [*argv, "--add", str(urls_file)]
    return Side("reader", argv, str(db), setup)


def setup_ours(config: str) -> None:
    """Create the archive at head and list the feeds (what a first ``poll`` would also do)."""
    from datetime import UTC, datetime

    from aggregator.config.settings import load_settings
    from storage.store import Store

    settings = load_settings(config)
    with Store.open(settings.database, settings.timeouts()) as store:
        store.sync_feeds(settings.feed_configs(), datetime.now(UTC))


def count_items(side: Side) -> int:
    """Items stored so far (not timed): entries for reader; ours says so in its summary."""
    if side.name == "reader":
        with sqlite3.connect(side.database) as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    return -1


def durability(side: Side) -> str:
    if side.name == "reader":
        with sqlite3.connect(side.database) as conn:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return (f"SQLite journal_mode={mode}, synchronous=FULL (SQLite's default; reader sets "
                "none); a transaction per feed for its entries, another for the feed row")
    if side.database.startswith("sqlite"):
        return ("SQLite journal_mode=WAL, synchronous=FULL (our default); group commit: each feed "
                "all-or-nothing, the feeds queued since the writer's last commit in one "
                "transaction")
    return "PostgreSQL, synchronous_commit=on (the default); group commit as above"


def outcome(side: Side, run: Measured, before: int) -> tuple[int, int, int, int]:
    """New items, ok, not modified, failed (-1: this system does not say)."""
    if side.name == "reader":
        return count_items(side) - before, -1, -1, -1
    match = SUMMARY.search(run.output)
    if not match:
        raise SystemExit(f"poll benchmark: {side.name} printed no summary:\n{run.output[-2000:]}")
    ok, not_modified, failed, new = (int(g) for g in match.groups())
    return new, ok, not_modified, failed


# ---------------------------------------------------------------- orchestrate, print


@dataclass
class WholePass:
    """One pass of one system as a whole process, with the server's view of it."""

    wall: float
    cpu: float
    user: float
    sys: float
    peak_rss_mib: float
    main_rss_mib: float
    processes: int
    startup: float  # fork to the first request the feed server saw
    new_items: int
    feeds: int
    ok: int
    not_modified: int
    failed: int
    server: dict[str, int]
    load: float  # 1-minute load average just before the pass

    @property
    def items_per_s(self) -> float:
        return self.new_items / self.wall if self.wall else 0.0

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.wall if self.wall else 0.0


def one_pass(side: Side, server: Any, feeds: int) -> WholePass:
    before_items = count_items(side)
    before = server.stats()
    load = os.getloadavg()[0]
    spawned = time.time()
    run = run_process(side.argv, child_env())
    after = server.stats()
    if run.status not in ((0,) if side.name == "reader" else (0, 1)):  # ours 1: feeds failed
        raise SystemExit(f"poll benchmark: {side.name} exited {run.status}:\n{run.output[-3000:]}")
    new, ok, not_modified, failed = outcome(side, run, before_items)
    status = {k: v - before["status"].get(k, 0) for k, v in after["status"].items()
              if v - before["status"].get(k, 0)}
    first = after.get("first_request")
    startup = first - spawned if first else float("nan")
    return WholePass(run.wall, run.cpu, run.user, run.sys, run.peak_rss_mib, run.main_rss_mib,
                     run.processes, startup, new, feeds, ok, not_modified, failed, status, load)


def sides(args: Any, workdir: Path, urls: list[str], urls_file: Path,
          database: str | None) -> list[Side]:  # fmt: skip
    service = {k: v for k, v in (("concurrency", args.concurrency),
                                 ("processes", args.processes),
                                 ("parse_workers", args.parse_workers)) if v is not None}
    chosen: list[Side] = []
    for system in args.systems.split(","):
        if system == "ours":
            chosen.append(ours(workdir, f"sqlite:///{workdir / 'archive.db'}", urls, service,
                               "ours (SQLite)"))
            if database:
                chosen.append(ours(workdir, database, urls, service, "ours (PostgreSQL)"))
        elif system == "reader":
            chosen.append(reader(workdir, urls_file, args.workers))
        else:
            raise SystemExit(f"poll benchmark: unknown system {system!r} (ours, reader)")
    return chosen


def compile_ours() -> None:
    """Byte-compile this tree, as ``pip install`` does for ours and did for reader: without it,
    and with ``PYTHONDONTWRITEBYTECODE`` set, every pass of ours would compile its ~150 modules
    from source (60-100 ms CPU a pass) while reader loads its ``.pyc`` files."""
    for package in ("aggregator", "storage"):
        compileall.compile_dir(ROOT / package, quiet=1)


def run_sides(chosen: list[Side], server: Any, feeds: int,
              steady: float = 0.0) -> dict[str, list[WholePass]]:  # fmt: skip
    """Set every side up, then run the first passes one after the other, then the second ones
    (then, with ``steady``, the third ones, once that fraction of the feeds gained an entry):
    each set of passes runs close together, under the same load."""
    compile_ours()
    for side in chosen:
        done = subprocess.run(side.setup, cwd=ROOT, env=child_env(), capture_output=True,
                              text=True, check=False)
        if done.returncode:
            raise SystemExit(f"poll benchmark: setting up {side.name} failed:\n"
                             f"{done.stderr[-3000:]}")
    results: dict[str, list[WholePass]] = {side.name: [] for side in chosen}
    for label in WITH_STEADY if steady else PASSES:
        if label == "steady":
            server.grow(steady)  # the same feeds changed for every side
        for side in chosen:
            results[side.name].append(one_pass(side, server, feeds))
    return results


def table(results: dict[str, list[WholePass]]) -> list[str]:
    head = (f"{'system':<18} {'pass':<7} {'wall s':>7} {'items/s':>8} {'feeds/s':>8} "
            f"{'200':>5} {'304':>5} {'fail':>5} {'CPU s':>6} {'user':>6} {'sys':>5} "
            f"{'RSS MiB':>8} {'procs':>5} {'start s':>7} {'load':>5}")
    rows = [head, "-" * len(head)]
    for name, passes in results.items():
        for label, r in zip(WITH_STEADY, passes, strict=False):
            rows.append(
                f"{name:<18} {label:<7} {r.wall:>7.2f} {r.items_per_s:>8.0f} "
                f"{r.feeds_per_s:>8.0f} {r.server.get('200', 0):>5} {r.server.get('304', 0):>5} "
                f"{max(r.failed, 0):>5} {r.cpu:>6.2f} {r.user:>6.2f} {r.sys:>5.2f} "
                f"{r.peak_rss_mib:>8.1f} {r.processes:>5} {r.startup:>7.2f} {r.load:>5.2f}")
    return rows


def round_ratios(results: dict[str, list[WholePass]]) -> dict[str, dict[str, float]]:
    """Per system of ours: reader's wall ÷ ours of each pass, the same of CPU seconds, and ours'
    peak RSS ÷ reader's; empty without reader."""
    base = results.get("reader")
    if base is None:
        return {}
    out = {}
    for name, passes in results.items():
        if name != "reader":
            labels = [SHOWN[label] for label in WITH_STEADY[: len(passes)]]
            cells = {f"{label} pass": o.wall / max(r.wall, 1e-9)
                     for label, r, o in zip(labels, passes, base, strict=True)}  # fmt: skip
            cells |= {f"CPU {label}": o.cpu / max(r.cpu, 1e-9)
                      for label, r, o in zip(labels, passes, base, strict=True)}  # fmt: skip
            cells["peak RSS"] = (max(r.peak_rss_mib for r in passes)
                                 / max(max(o.peak_rss_mib for o in base), 1e-9))  # fmt: skip
            out[name] = cells
    return out


def ratios(results: dict[str, list[WholePass]]) -> list[str]:
    lines = []
    for name, cells in round_ratios(results).items():
        walls = ", ".join(f"{k} ×{v:.2f}" for k, v in cells.items() if k.endswith(" pass"))
        cpus = " and ".join(f"×{v:.2f}" for k, v in cells.items() if k.startswith("CPU "))
        lines.append(f"{name} against reader, whole processes: {walls} (reader's wall ÷ ours); "
                     f"CPU seconds {cpus} (reader's ÷ ours); peak RSS ×{cells['peak RSS']:.2f} "
                     "(ours ÷ reader's)")  # fmt: skip
    return lines


def medians(rounds: list[dict[str, list[WholePass]]]) -> list[str]:
    """Each ratio's median over the rounds, with its lowest and highest: a shared machine moves
    a pass's wall time by a tenth or more from one run to the next."""
    per_round = [round_ratios(results) for results in rounds]
    lines = []
    for name, first in per_round[0].items():
        cells = []
        for label in first:
            values = sorted(r[name][label] for r in per_round)
            cells.append(f"{label} ×{statistics.median(values):.2f} "
                         f"({values[0]:.2f}–{values[-1]:.2f})")  # fmt: skip
        lines.append(f"{name} against reader, median of {len(rounds)} rounds (lowest–highest): "
                     + ", ".join(cells))  # fmt: skip
    return lines


def main_whole(args: Any, server: Any, workdir: Path, urls_file: Path,
               database: str | None) -> tuple[list[str], dict[str, Any]]:  # fmt: skip
    """Run every side's two passes as whole processes, ``args.repeat`` rounds each on fresh
    databases (a new PostgreSQL schema per round); the report's lines and raw figures."""
    from benchmarks.poll import fresh_database

    rounds: list[dict[str, list[WholePass]]] = []
    lines: list[str] = []
    for number in range(1, args.repeat + 1):
        here = workdir / f"round-{number}"
        here.mkdir()
        with contextlib.ExitStack() as stack:
            pg = stack.enter_context(fresh_database(database, here)) if database else None
            chosen = sides(args, here, server.urls, urls_file, pg)
            results = run_sides(chosen, server, len(server.urls), args.steady)
            described = "; ".join(f"{s.name}: {durability(s)}" for s in chosen)
        rounds.append(results)
        if args.repeat > 1:
            lines.append(f"round {number} of {args.repeat}, load average "
                         f"{os.getloadavg()[0]:.2f} after it")  # fmt: skip
        lines += [*table(results), *ratios(results)]
    if args.repeat > 1:
        lines += medians(rounds)
    lines += ["durability: " + described,
              f"cores available to each side: {len(os.sched_getaffinity(0))} (of "
              f"{os.cpu_count()}); RSS = the sum of each process's peak; start s = fork to "
              "the first request the feed server saw"]
    raw = [{"runs": [{"name": name, "passes": [{**vars(p)} for p in passes]}
                     for name, passes in results.items()]} for results in rounds]  # fmt: skip
    return lines, {**raw[0], "rounds": raw}


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup-ours"]:
        setup_ours(sys.argv[2])
