"""What metrics cost: the soak (benchmarks/soak.py) with and without ``service.listen``, in turns.

The feeds are polled as fast as the service can (a 1 s interval over hundreds of feeds,
no per-host gap), so polls per second is its throughput; CPU seconds per 1,000 polls says the
same with less noise from a shared machine. Runs alternate (off, on, off, on, …) so that a
change in the machine's load hits both sides. With ``listen`` the endpoint is scraped every
sample, as Prometheus would, and the memory of every process is read from /metrics::

    python -m benchmarks.soakmetrics                    # 2 rounds of 1.5 minutes each side
    python -m benchmarks.soakmetrics --minutes 0.3 --rounds 1 --feeds 60   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import soak  # noqa: E402


def one_run(base: list[str], listen: bool) -> dict[str, Any]:
    args = soak.parse_args([*base, "--quiet", *(["--listen"] if listen else [])])
    result = soak.soak(args)
    machine = result["machine"]
    polls = result["polls"]
    return {
        "listen": listen, "seconds": result["seconds"], "polls": polls,
        "polls_per_s": round(polls / max(result["seconds"], 1e-9), 1),
        "cpu_s_per_1000_polls": round(1000 * machine.get("service_cpu_seconds", 0) / max(polls, 1),
                                      2),
        "load1_mean": machine.get("load1_mean"), "exit_code": result["exit_code"],
        "rss_mib": [y for _, y in result["rss_series"]],
        "scrapes": result["scrapes"],
    }  # fmt: skip


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per side and the overhead of metrics, in percent of throughput and of CPU."""
    side = {flag: [r for r in runs if r["listen"] is flag] for flag in (False, True)}
    med = {flag: {key: statistics.median(r[key] for r in rows)
                  for key in ("polls_per_s", "cpu_s_per_1000_polls")}
           for flag, rows in side.items()}  # fmt: skip
    off, on = med[False], med[True]
    return {
        "without": off, "with": on,
        "throughput_overhead_percent": round(100 * (1 - on["polls_per_s"] / off["polls_per_s"]), 2),
        "cpu_overhead_percent": round(100 * (on["cpu_s_per_1000_polls"]
                                             / off["cpu_s_per_1000_polls"] - 1), 2),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--minutes", type=float, default=1.5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--feeds", type=int, default=300)
    p.add_argument("--json", help="write every run and the comparison here")
    args = p.parse_args(argv)
    base = ["--minutes", str(args.minutes), "--feeds", str(args.feeds), "--hosts", "50",
            "--interval", "1", "--min-interval", "1", "--host-delay", "0", "--timeout", "3",
            "--slow-delay", "1", "--retry-after", "5", "--latency", "0.005", "--articles", "0",
            "--concurrency", "32", "--tick", "0.5", "--sample", "10"]
    runs = []
    for round_no in range(args.rounds):
        for listen in (False, True):
            run = one_run(base, listen)
            runs.append(run)
            print(f"round {round_no + 1} listen={listen}: {run['polls']} polls in "
                  f"{run['seconds']:.0f}s = {run['polls_per_s']}/s, "
                  f"{run['cpu_s_per_1000_polls']} CPU s per 1000 polls, load {run['load1_mean']}, "
                  f"exit {run['exit_code']}", flush=True)
            if listen:
                print("  /metrics every sample (s, polls counted, MiB of all processes, "
                      "/healthz): " + " ".join(f"({t:.0f}, {n:.0f}, {m / 2**20:.0f}, {h})"
                                               for t, n, m, h in run["scrapes"]))
    result = compare(runs)
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "comparison": result}, indent=1))


if __name__ == "__main__":
    main()
