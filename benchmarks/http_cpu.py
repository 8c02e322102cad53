"""Micro-benchmark: CPU milliseconds per request of our HTTP client, for 200s and 304s; not a test.

The feeds come from :mod:`benchmarks.feedserver` (its own process, so its CPU is not counted
here): N feeds spread over many loopback addresses, 20 ms per response, gzip, strong ETags.
``workers`` tasks (64 by default; the service's ``concurrency`` is 128) pull URLs from one list
and call ``HttpClient.get``, either alone or inside ``HostLimiter.slot`` (at most 2 in flight per
host, no gap: what ``benchmarks/poll.py`` runs). Each round fetches every feed unconditionally (200)
then with its ETag and Last-Modified (304), over connections kept alive from the round before;
the first, cold round (connections opened) is reported apart. CPU is ``time.process_time()`` of
this process (all threads: name resolution runs in worker threads)::

    python -m benchmarks.http_cpu       # 1,000 feeds on 100 hosts, 64 in flight, 5 rounds
    python -m benchmarks.http_cpu --requests 200 --rounds 2 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/http_cpu.py`
    sys.path.insert(0, str(ROOT))

from aggregator.config.settings import HttpSettings  # noqa: E402
from aggregator.fetch.http import HttpClient, Response  # noqa: E402
from aggregator.fetch.politeness import HostLimiter  # noqa: E402
from benchmarks.feedserver import FeedServer  # noqa: E402

Validators = dict[str, tuple[str | None, str | None]]


@dataclass
class Pass:
    """One pass over every feed: what the client did and what it cost this process."""

    variant: str  # "client" or "client+limiter"
    kind: str  # "200 cold", "200" or "304"
    requests: int
    statuses: dict[str, int]
    cpu_ms_per_request: float
    wall_s: float


async def run_pass(
    urls: list[str],
    fetch: Callable[[str], Awaitable[Response]],
    workers: int,
) -> tuple[list[Response], float, float]:
    """Fetch every URL with ``workers`` tasks; returns responses, CPU seconds and wall seconds."""
    responses: list[Response | None] = [None] * len(urls)
    queue = iter(range(len(urls)))

    async def worker() -> None:
        for i in queue:
            responses[i] = await fetch(urls[i])

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return [r for r in responses if r is not None], cpu, wall


def fetcher(
    client: HttpClient, limiter: HostLimiter | None, validators: Validators | None
) -> Callable[[str], Awaitable[Response]]:
    """What the pipeline does for a feed: a slot of its host (optionally), then one GET."""

    def slot(url: str) -> AbstractAsyncContextManager[None]:
        return limiter.slot(url) if limiter is not None else nullcontext()

    async def fetch(url: str) -> Response:
        etag, modified = validators[url] if validators is not None else (None, None)
        async with slot(url):
            return await client.get(url, etag=etag, last_modified=modified)

    return fetch


async def measure(urls: list[str], variant: str, rounds: int, workers: int) -> list[Pass]:
    settings = HttpSettings.model_validate({"allow_private_networks": True, "timeout": 30})
    limiter = HostLimiter(2, 0.0) if variant == "client+limiter" else None
    passes: list[Pass] = []
    async with HttpClient(settings) as client:
        validators: Validators = {}
        for n in range(rounds + 1):
            for kind in ("200 cold" if n == 0 else "200", "304"):
                if kind == "304" and n == 0:
                    continue  # the cold round only opens connections
                given = validators if kind == "304" else None
                responses, cpu, wall = await run_pass(
                    urls, fetcher(client, limiter, given), workers
                )
                if kind != "304":
                    validators = {
                        r.url: (r.header("etag"), r.header("last-modified")) for r in responses
                    }
                statuses = Counter(str(r.status) for r in responses)
                passes.append(Pass(variant, kind, len(urls), dict(statuses),
                                   1000 * cpu / len(urls), wall))
    return passes


def summary(passes: list[Pass]) -> list[str]:
    """One line per variant and kind: median and best CPU ms per request over the rounds."""
    lines = [f"{'variant':<16} {'kind':<9} {'rounds':>6} {'CPU ms/req':>10} {'best':>6} "
             f"{'wall s':>6}  statuses"]
    groups: dict[tuple[str, str], list[Pass]] = {}
    for p in passes:
        groups.setdefault((p.variant, p.kind), []).append(p)
    for (variant, kind), group in groups.items():
        cpu = [p.cpu_ms_per_request for p in group]
        wall = statistics.median(p.wall_s for p in group)
        statuses: Counter[str] = Counter()
        for p in group:
            statuses.update(p.statuses)
        lines.append(f"{variant:<16} {kind:<9} {len(group):>6} {statistics.median(cpu):>10.3f} "
                     f"{min(cpu):>6.3f} {wall:>6.2f}  {dict(statuses)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="feeds, one request each")
    parser.add_argument("--hosts", type=int, default=100, help="loopback addresses")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per response")
    parser.add_argument("--entries", type=int, default=20, help="entries per feed")
    parser.add_argument("--workers", type=int, default=64, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=5, help="warm rounds of 200 then 304")
    parser.add_argument("--variants", default="client,client+limiter")
    parser.add_argument("--json", type=Path, help="write every pass's figures here")
    args = parser.parse_args(argv)
    with FeedServer(feeds=args.requests, entries=args.entries, latency=args.latency,
                    hosts=args.hosts) as server:
        passes: list[Pass] = []
        for variant in args.variants.split(","):
            passes += asyncio.run(measure(server.urls, variant, args.rounds, args.workers))
        server_cpu = server.stats()["cpu"]
    print("\n".join(summary(passes)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"feed server CPU {server_cpu:.2f} s; load average {load}")
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in passes], indent=1))


if __name__ == "__main__":
    main()
