"""Soak test: the real service (``python -m aggregator run``) for minutes, local feeds; not a test.

2,000 feeds over 500 loopback addresses (benchmarks/soakserver.py, its own process); 20 %
misbehave (500, 429 + Retry-After, slow, gzip bomb, slowloris, hang, endless chunked, lying
Content-Length, HTML, 410, redirect loop); healthy feeds grow every few minutes; 1 % of them
fetch their articles. The service runs as a subprocess on a fresh SQLite file with a generated
config; its RSS is sampled from /proc every ``--sample`` seconds; at the end it gets SIGTERM and
must exit 0. Reported: polls done (the server's log), the RSS series and its slope, each healthy
feed's gaps against its interval plus jitter, each misbehaving mode's recorded errors::

    python -m benchmarks.soak                                   # 10 minutes, 2,000 feeds
    python -m benchmarks.soak --minutes 0.25 --feeds 20 --hosts 5 --interval 4   # the smoke test

``--listen`` turns on the service's /healthz and /metrics and scrapes them every sample;
``benchmarks/soakmetrics.py`` runs the soak with and without it to measure what metrics cost.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/soak.py`
    sys.path.insert(0, str(ROOT))

from benchmarks.feedserver import FIRST_HOST, ServerSpec  # noqa: E402

JITTER = 0.25  # the policy's default: a delay grows by up to 25 %
WARMUP = 0.2  # the first fifth of the run (first polls of every feed) is left out of the slope


@dataclass
class Run:
    """What one soak run measured."""

    args: dict[str, Any]
    seconds: float = 0.0
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)
    # (seconds, service CPU seconds, its open descriptors, the machine's 1-minute load average)
    probes: list[tuple[float, float, int, float]] = field(default_factory=list)
    started_at: float = 0.0  # unix time the service was started
    peak_hwm_mib: float = 0.0
    exit_code: int | None = None
    shutdown_seconds: float = 0.0
    log: dict[str, Any] = field(default_factory=dict)
    feeds: list[dict[str, Any]] = field(default_factory=list)  # the store's rows, by feed index
    # --listen: (seconds, polls counted by /metrics, resident bytes of every process, /healthz)
    scrapes: list[tuple[float, float, float, int]] = field(default_factory=list)


# ---------------------------------------------------------------- processes

class SoakServer:
    """The soak server as a child process; stops when its stdin closes."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "soakserver.py"), *spec.argv()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("soakserver did not start")
        info = json.loads(line)
        self.port: int = info["port"]
        self.urls: list[str] = info["urls"]
        self.modes: list[str] = info["modes"]

    def get(self, path: str) -> dict[str, Any]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{FIRST_HOST}:{self.port}{path}", timeout=60) as resp:
            result: dict[str, Any] = json.load(resp)
            return result

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def write_config(path: Path, args: argparse.Namespace, urls: list[str], modes: list[str],
                 database: str) -> None:
    """The service's YAML (JSON is YAML): every Nth healthy feed fetches its articles."""
    every = round(1 / args.articles) if args.articles > 0 else 0
    healthy = [i for i, m in enumerate(modes) if m == "ok"]
    with_articles = set(healthy[::every]) if every else set()
    config = {
        "database": database,
        "http": {"allow_private_networks": True, "timeout": args.timeout,
                 "connect_timeout": min(5.0, args.timeout), "per_host_delay": args.host_delay},
        "service": {"concurrency": args.concurrency, "tick": args.tick,
                    **({"listen": "127.0.0.1:0"} if args.listen else {})},
        "defaults": {"interval": args.interval, "min_interval": args.min_interval,
                     "max_interval": max(3600.0, args.interval), "fetch_articles": False},
        "feeds": [{"url": u, **({"fetch_articles": True} if i in with_articles else {})}
                  for i, u in enumerate(urls)],
    }
    path.write_text(json.dumps(config, indent=1))


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB, from /proc."""
    values: dict[str, float] = {}
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(pid: int, t: float) -> tuple[float, float, int, float]:
    """(t, CPU seconds so far, open file descriptors, 1-minute load average of the machine)."""
    fds = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    return round(t, 1), round(cpu_seconds(pid), 2), fds, os.getloadavg()[0]


def run_service(config: Path, args: argparse.Namespace, workdir: Path, run: Run) -> None:
    """Start the service, sample its memory until the time is up, stop it with SIGTERM."""
    logfile = (workdir / "service.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config), "run"],
                            cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT)
    started = time.monotonic()
    run.started_at = time.time()
    end = started + args.minutes * 60
    try:
        while (now := time.monotonic()) < end and proc.poll() is None:
            rss, hwm = rss_mib(proc.pid)
            if rss:  # 0 while the interpreter is still being exec'd
                run.rss.append((round(now - started, 1), round(rss, 1)))
                run.probes.append(probe(proc.pid, now - started))
            run.peak_hwm_mib = max(run.peak_hwm_mib, hwm)
            if args.listen and rss:
                scraped = scrape(workdir / "service.log")
                if scraped is not None:
                    run.scrapes.append((round(now - started, 1), *scraped))
            if not args.quiet:
                print(f"  t={now - started:6.0f}s  RSS {rss:7.1f} MiB", flush=True)
            time.sleep(max(0.0, min(args.sample, end - time.monotonic())))
        if args.listen and proc.poll() is None and (last := scrape(workdir / "service.log")):
            run.scrapes.append((round(time.monotonic() - started, 1), *last))  # the final count
        run.seconds = time.monotonic() - started
        stopping = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        run.exit_code = proc.wait(60)
        run.shutdown_seconds = time.monotonic() - stopping
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        logfile.close()


def scrape(log: Path) -> tuple[float, float, int] | None:
    """(polls counted, resident bytes of every process, /healthz status) from the service's
    endpoint, whose address its log names; None before it listens."""
    import re
    import urllib.error

    found = re.search(r"serving /healthz and /metrics on (http://\S+)", log.read_text())
    if not found:
        return None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(found[1] + "/metrics", timeout=30) as resp:
            text = resp.read().decode()
        with opener.open(found[1] + "/healthz", timeout=30) as resp:
            health = resp.status
    except urllib.error.HTTPError as exc:
        health = exc.code
    except OSError:
        return None
    sums = {"aggregator_polls_total": 0.0, "aggregator_process_resident_memory_bytes": 0.0}
    for line in text.splitlines():
        name = line.partition("{")[0].partition(" ")[0]
        if name in sums:
            sums[name] += float(line.rpartition(" ")[2])
    return (sums["aggregator_polls_total"], sums["aggregator_process_resident_memory_bytes"],
            health)


def stored_feeds(database: str, urls: list[str]) -> list[dict[str, Any]]:
    """The store's view of every feed after the run, by feed index."""
    from storage.store import Store

    store = Store.open(database)
    try:
        rows = {f.url: f for f in store.list_feeds()}
    finally:
        store.close()
    return [{"status": rows[u].last_status, "error_count": rows[u].error_count,
             "error": rows[u].last_error, "reason": rows[u].next_reason,
             "gone": rows[u].gone, "items": rows[u].item_count} for u in urls]


# ---------------------------------------------------------------- analysis (pure)

def slope_per_hour(series: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    if len(series) < 3:
        return 0.0
    xs, ys = [x for x, _ in series], [y for _, y in series]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else 3600 * sum((x - mx) * (y - my) for x, y in series) / den


def memory_report(run: Run) -> dict[str, Any]:
    steady = [s for s in run.rss if s[0] >= WARMUP * run.seconds]
    values = [y for _, y in steady] or [0.0]
    return {"samples": len(run.rss), "peak_rss_mib": max((y for _, y in run.rss), default=0.0),
            "peak_hwm_mib": round(run.peak_hwm_mib, 1),
            "steady_min_mib": min(values), "steady_max_mib": max(values),
            "steady_slope_mib_per_hour": round(slope_per_hour(steady), 1)}


def gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


def lateness_by_minute(times: dict[str, list[float]], modes: list[str], bound: float,
                       tolerance: float, start: float) -> list[tuple[int, int, float, float]]:
    """Per minute of the run (by the later request): (minute, gaps, on-time fraction, max late)."""
    buckets: dict[int, list[float]] = {}
    for i, mode in enumerate(modes):
        ordered = sorted(times.get(str(i), [])) if mode == "ok" else []
        for a, b in itertools.pairwise(ordered):
            buckets.setdefault(int((b - start) // 60), []).append(b - a - bound)
    return [(m, len(v), round(sum(x <= tolerance for x in v) / len(v), 3), round(max(v), 1))
            for m, v in sorted(buckets.items())]


def schedule_report(times: dict[str, list[float]], modes: list[str], interval: float,
                    tick: float) -> dict[str, Any]:
    """Healthy feeds: each gap against interval × (1 + jitter); on time: late by ≤ a tick + 1 s."""
    healthy = [i for i, m in enumerate(modes) if m == "ok"]
    bound = interval * (1 + JITTER)
    all_gaps = [g for i in healthy for g in gaps(times.get(str(i), []))]
    late = [g - bound for g in all_gaps]
    never = [i for i in healthy if not times.get(str(i))]
    polls = [len(times.get(str(i), [])) for i in healthy]
    return {
        "healthy_feeds": len(healthy), "never_polled": len(never),
        "polls_per_feed_min": min(polls, default=0), "polls_per_feed_max": max(polls, default=0),
        "gaps": len(all_gaps), "expected_gap_s": [interval, bound],
        "early": sum(1 for g in all_gaps if g < interval - 0.5),
        "on_time_fraction": round(sum(1 for x in late if x <= tick + 1) / max(1, len(late)), 4),
        "max_lateness_s": round(max(late, default=0.0), 1),
        "p99_lateness_s": round(_quantile(late, 0.99), 1),
        "median_gap_s": round(statistics.median(all_gaps), 1) if all_gaps else None,
    }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def misbehaving_report(times: dict[str, list[float]], modes: list[str],
                       feeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode: feeds, requests, what the store recorded, the shortest gap between requests."""
    report: dict[str, Any] = {}
    for mode in sorted(set(modes) - {"ok"}):
        idx = [i for i, m in enumerate(modes) if m == mode]
        requests = [len(times.get(str(i), [])) for i in idx]
        min_gap = min((g for i in idx for g in gaps(times.get(str(i), []))), default=None)
        report[mode] = {
            "feeds": len(idx), "requests": sum(requests), "max_requests_per_feed": max(requests),
            "recorded": dict(Counter(str(feeds[i]["status"]) for i in idx)),
            "max_error_count": max(feeds[i]["error_count"] for i in idx),
            "min_gap_s": None if min_gap is None else round(min_gap, 1),
            "last_error": feeds[idx[0]]["error"], "next_reason": feeds[idx[0]]["reason"],
        }
    return report


def machine_report(run: Run) -> dict[str, Any]:
    """The service's CPU use, its open descriptors, and how busy the machine was."""
    if len(run.probes) < 2:
        return {}
    (t0, c0, _, _), (t1, c1, _, _) = run.probes[0], run.probes[-1]
    fds = [p[2] for p in run.probes]
    load = [p[3] for p in run.probes]
    return {"service_cpu_percent": round(100 * (c1 - c0) / max(t1 - t0, 1e-9), 1),
            "service_cpu_seconds": c1, "fds_min": min(fds), "fds_max": max(fds),
            "fds_last": fds[-1], "load1_mean": round(statistics.fmean(load), 2),
            "load1_max": round(max(load), 2), "cpus": os.cpu_count()}


def summarize(run: Run, modes: list[str], args: argparse.Namespace) -> dict[str, Any]:
    times: dict[str, list[float]] = run.log.get("times", {})
    bound = args.interval * (1 + JITTER)
    return {
        "args": run.args, "seconds": round(run.seconds, 1), "exit_code": run.exit_code,
        "shutdown_seconds": round(run.shutdown_seconds, 1),
        "polls": sum(len(v) for v in times.values()),
        "server_status": run.log.get("status", {}),
        "memory": memory_report(run), "rss_series": run.rss,
        "schedule": schedule_report(times, modes, args.interval, args.tick),
        "schedule_by_minute": lateness_by_minute(times, modes, bound, args.tick + 1,
                                                 run.started_at),
        "machine": machine_report(run), "probes": run.probes, "scrapes": run.scrapes,
        "misbehaving": misbehaving_report(times, modes, run.feeds),
        "healthy_items_stored": sum(f["items"] for f, m in zip(run.feeds, modes, strict=True)
                                    if m == "ok"),
    }


# ---------------------------------------------------------------- main

def soak(args: argparse.Namespace) -> dict[str, Any]:
    spec = ServerSpec(feeds=args.feeds, entries=args.entries, latency=args.latency,
                      hosts=min(args.hosts, args.feeds), grow_every=args.grow_every,
                      slow_delay=args.slow_delay, retry_after=args.retry_after)
    run = Run(args=vars(args))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = Path(tmp)
        database = args.database or f"sqlite:///{workdir / 'soak.db'}"
        server = SoakServer(spec)
        try:
            write_config(workdir / "soak.yaml", args, server.urls, server.modes, database)
            run_service(workdir / "soak.yaml", args, workdir, run)
            run.log = server.get("/_log")
        finally:
            server.stop()
        run.feeds = stored_feeds(database, server.urls)
        if args.keep_times:
            Path(args.keep_times).write_text(json.dumps(run.log))
        if args.keep_log:
            Path(args.keep_log).write_bytes((workdir / "service.log").read_bytes())
        return summarize(run, server.modes, args)


def print_report(result: dict[str, Any]) -> None:
    mem, sched = result["memory"], result["schedule"]
    print(f"ran {result['seconds']:.0f}s; exit code on SIGTERM {result['exit_code']} "
          f"after {result['shutdown_seconds']}s; polls (feed requests) {result['polls']}")
    print(f"server answers: {result['server_status']}")
    print("RSS MiB every sample: " + " ".join(f"{y:.0f}" for _, y in result["rss_series"]))
    print(f"memory: peak RSS {mem['peak_rss_mib']} MiB (HWM {mem['peak_hwm_mib']}), steady "
          f"{mem['steady_min_mib']}–{mem['steady_max_mib']} MiB, slope "
          f"{mem['steady_slope_mib_per_hour']} MiB/h")
    print(f"schedule: {json.dumps(sched)}")
    print("by minute (minute, gaps, on time, max late s): "
          + " ".join(str(list(row)) for row in result["schedule_by_minute"]))
    print(f"machine: {json.dumps(result['machine'])}")
    print(f"healthy items stored: {result['healthy_items_stored']}")
    for mode, row in result["misbehaving"].items():
        print(f"  {mode:9} {json.dumps(row)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--feeds", type=int, default=2000)
    p.add_argument("--hosts", type=int, default=500, help="loopback addresses to spread over")
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--latency", type=float, default=0.02, help="seconds per healthy response")
    p.add_argument("--grow-every", type=float, default=300.0, help="seconds between new entries")
    p.add_argument("--slow-delay", type=float, default=5.0)
    p.add_argument("--retry-after", type=int, default=120)
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--min-interval", type=float, default=30.0)
    p.add_argument("--timeout", type=float, default=10.0, help="the service's total deadline")
    p.add_argument("--host-delay", type=float, default=1.0, help="per-host minimum gap")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--tick", type=float, default=2.0)
    p.add_argument("--articles", type=float, default=0.01, help="share of healthy feeds")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    p.add_argument("--database", help="a fresh, empty database URL (default: temporary SQLite)")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--keep-log", help="copy the service's log here")
    p.add_argument("--keep-times", help="write the server's request log (JSON) here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--listen", action="store_true", help="serve /metrics; scrape every sample")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = soak(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print_report(result)
    sys.exit(0 if result["exit_code"] == 0 else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
