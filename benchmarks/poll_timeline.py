"""Where a whole ``poll --once`` spends its wall time: start-up, the fetches, the writer.

The poll benchmark gives one wall time per pass; this shows what bounds it. Each pass runs as
its own process on the shipped defaults (as :mod:`benchmarks.poll_whole` runs it), with two
functions wrapped to take the time: ``Store.apply_polls`` (each write batch: when it began and
ended, its polls, its thread's CPU seconds) and ``HttpClient.get`` (when each response was in)::

    python -m benchmarks.poll_timeline [--feeds 1000] [--entries 20] [--hosts 1000]
        [--latency 0.02] [--database postgresql+psycopg://…] [--json FILE]

Times are seconds from the start of the pass's module, just after the interpreter's own start
(about 20 ms). Reading it: when the writer is busy from its first batch to the end of the pass
(``busy`` close to ``span``), the writer bounds the pass and the fetches wait for it (their
back-pressure); ``cpu`` below ``busy`` is time the writer's thread spent waiting (for the GIL,
the disk or the database server), not working. On PostgreSQL two batches may be in flight at
once (``writer.LANES``), so ``busy`` may exceed ``span``. Wall times on a shared machine move by
10–20 % from run to run: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STARTED = time.perf_counter()  # a pass's clock: the child imports nothing of the benchmark's


def child(config: str, out: str) -> None:
    """One pass, in this process, with the writer's batches and the responses timed."""
    began = STARTED
    batches: list[list[float]] = []
    responses: list[float] = []

    from aggregator.fetch.http import HttpClient
    from storage.store import Store

    apply_polls, get = Store.apply_polls, HttpClient.get

    def timed_apply(self: Store, results: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return apply_polls(self, results)
        finally:
            batches.append([start - began, time.perf_counter() - began, len(results),
                            time.thread_time() - cpu])

    async def timed_get(self: HttpClient, *args: Any, **kwargs: Any) -> Any:
        response = await get(self, *args, **kwargs)
        responses.append(time.perf_counter() - began)
        return response

    Store.apply_polls = timed_apply  # type: ignore[method-assign]
    HttpClient.get = timed_get  # type: ignore[method-assign]
    from aggregator.cli.commands import main

    sys.argv = ["aggregator", "-c", config, "poll", "--once"]
    status: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        status = exc.code
    finally:
        Path(out).write_text(json.dumps({
            "end": time.perf_counter() - began, "status": status, "batches": batches,
            "responses": responses}))  # fmt: skip


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """The figures of one pass's timeline (seconds from the interpreter's start of the pass)."""
    batches, responses = raw["batches"], raw["responses"]
    written = [b for b in batches if b[2]]
    first = min((b[0] for b in written), default=0.0)
    last = max((b[1] for b in written), default=0.0)
    return {
        "end": round(raw["end"], 3),
        "first_response": round(min(responses, default=0.0), 3),
        "last_response": round(max(responses, default=0.0), 3),
        "batches": len(written),
        "polls_written": sum(b[2] for b in written),
        "writer_span": round(last - first, 3),
        "writer_busy": round(sum(b[1] - b[0] for b in written), 3),
        "writer_cpu": round(sum(b[3] for b in written), 3),
        "status": raw["status"],
    }


def run(feeds: int, entries: int, hosts: int, latency: float,
        database: str | None) -> list[dict[str, Any]]:  # fmt: skip
    sys.path.insert(0, str(ROOT))
    from benchmarks.feedserver import FeedServer
    from benchmarks.poll import fresh_database
    from benchmarks.poll_whole import child_env, our_config

    env = child_env()
    passes = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database(database, Path(tmp)) as url, \
            FeedServer(feeds=feeds, entries=entries, latency=latency, hosts=hosts) as server:
        config = Path(tmp) / "feeds.yaml"
        our_config(config, url, server.urls, {})
        subprocess.run([sys.executable, "-m", "benchmarks.poll_whole", "setup-ours", str(config)],
                       cwd=ROOT, env=env, check=True)  # fmt: skip
        for name in ("first", "second"):
            out = Path(tmp) / f"{name}.json"
            subprocess.run([sys.executable, "-m", "benchmarks.poll_timeline", "child", str(config),
                            str(out)], cwd=ROOT, env=env, check=False,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            passes.append({"pass": name, **summarize(json.loads(out.read_text()))})
    return passes


def report(passes: list[dict[str, Any]]) -> list[str]:
    head = ("pass     end s  1st resp  last resp  batches  polls  writer span  busy    cpu  "
            "status")
    lines = [head, "-" * len(head)]
    for p in passes:
        lines.append(f"{p['pass']:<7} {p['end']:6.2f}  {p['first_response']:8.2f}  "
                     f"{p['last_response']:9.2f}  {p['batches']:7d}  {p['polls_written']:5d}  "
                     f"{p['writer_span']:11.2f}  {p['writer_busy']:4.2f}  {p['writer_cpu']:5.2f}  "
                     f"{p['status']}")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=None,
                        help="loopback addresses to spread feeds over (default: one per feed)")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--database", default=None,
                        help="run on this PostgreSQL (a fresh schema in it) instead of SQLite")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    passes = run(args.feeds, args.entries, args.hosts or args.feeds, args.latency, args.database)
    print("\n".join(report(passes)))
    if args.json is not None:
        args.json.write_text(json.dumps(passes, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main()
