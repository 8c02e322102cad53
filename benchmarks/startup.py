"""Start-up time and peak memory of each CLI command, measured as whole processes (issue 13).

A command line tool is judged by how soon it answers: every command runs as its own process (what
a user's shell does), best wall time of ``--repeat`` runs and the peak RSS of that process (from
``os.wait4``, per child). ``feeds`` and ``stats`` run against a small archive that a loopback feed
server fills first (20 feeds x 10 entries, one ``poll --once``)::

    python benchmarks/startup.py [--repeat 5] [--json]

The last line is the idle service: ``run`` started on that archive (its feeds already polled),
its resident memory (VmRSS) read two seconds after it says it started, and the time it took to
say so.

Targets from the issue: ``--help``, ``--version``, ``check-config`` under 0.25 s; ``feeds`` and
``stats`` under 0.4 s. Figures depend on the machine and its load: compare runs on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.feedserver import FeedServer  # noqa: E402  (after the path fix for a checkout)

COMMANDS = [["--help"], ["--version"], ["check-config"], ["feeds"], ["stats"],
            ["poll", "--help"], ["export", "--output", "{tmp}/out.jsonl"], ["serve", "--help"],
            ["export", "--format", "atom", "--output", "{tmp}/out.atom"]]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB, exit status) of one process running
    ``argv``. CPU time (user + system) varies less than wall time on a busy machine."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen so
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode


def write_config(tmp: Path, urls: list[str]) -> Path:
    feeds = "".join(f"  - url: {url}\n" for url in urls)
    path = tmp / "feeds.yaml"
    path.write_text(
        f"database: sqlite:///{tmp / 'archive.db'}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        f"defaults:\n  fetch_articles: false\nfeeds:\n{feeds}", encoding="utf-8")
    return path


def measure(repeat: int, feeds: int) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "aggregator"]
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, \
            FeedServer(feeds=feeds, entries=10, latency=0.0, hosts=4) as server:
        env["AGGREGATOR_CONFIG"] = str(write_config(Path(tmp), server.urls))
        setup = [("poll", "--once")]
        for args in setup:
            subprocess.run([*base, *args], env=env, check=True, capture_output=True)
        for args in COMMANDS:
            argv = [a.replace("{tmp}", tmp) for a in args]
            runs = [timed([*base, *argv], env) for _ in range(repeat)]
            best = min(runs)
            results.append({"command": " ".join(args).replace("{tmp}/", ""),
                            "seconds": round(best[0], 3),
                            "cpu_seconds": round(min(r[1] for r in runs), 3),
                            "peak_rss_mib": round(best[2] / 1024, 1), "status": best[3]})
        results.append(idle_service([*base, "run"], env))
    return results


def idle_service(argv: list[str], env: dict[str, str], settle: float = 2.0) -> dict[str, object]:
    """Start ``run``, wait for its start line, let it settle, read its RSS, stop it."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "service started" in line:
            break
    elapsed = time.perf_counter() - started
    time.sleep(settle)
    status = Path(f"/proc/{proc.pid}/status").read_text(encoding="ascii")
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    return {"command": "run (idle)", "seconds": round(elapsed, 3), "cpu_seconds": 0.0,
            "peak_rss_mib": round(rss / 1024, 1), "status": proc.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (best is kept)")
    parser.add_argument("--feeds", type=int, default=20, help="feeds in the small archive")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    results = measure(args.repeat, args.feeds)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(str(r["command"])) for r in results)
    print(f"{'command':<{width}}  seconds  cpu s  peak RSS  status")
    for r in results:
        print(f"{r['command']:<{width}}  {r['seconds']:>7.3f}  {r['cpu_seconds']:>5.3f}"
              f"  {r['peak_rss_mib']:>5.1f} MiB  {r['status']:>6}")


if __name__ == "__main__":
    main()
