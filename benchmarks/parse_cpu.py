"""Micro-benchmark: CPU per feed of parsing the poll benchmark's feeds; not a test.

The bodies are :mod:`benchmarks.feedserver`'s (RSS 2.0, 20 entries, two HTML paragraphs per
description), rendered in memory: no server, no network. Each round parses every body as the
service's parse pool does, ``parse_safely(parse_feed, …)`` (parse, then sanitize with nh3), on
a fresh sanitize cache, as on a first pass. The best round's ``time.process_time()`` is reported
per feed, with parsing alone beside it (issue 14)::

    python -m benchmarks.parse_cpu                      # 1,000 feeds, best of 5 rounds
    python -m benchmarks.parse_cpu --feeds 50 --rounds 1 --profile parse.prof
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/parse_cpu.py`
    sys.path.insert(0, str(ROOT))

from aggregator.feeds import feedhtml, parse_feed, parse_safely  # noqa: E402
from benchmarks.feedserver import ServerSpec, feed_urls, host_of, render_feed  # noqa: E402

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bodies(feeds: int, entries: int) -> list[tuple[str, bytes]]:
    """(URL, body) of each feed, as the feed server renders them (one host per feed, port 80)."""
    spec = ServerSpec(feeds=feeds, entries=entries, hosts=feeds)
    start = NOW.timestamp()
    dates = [start - k * 3600.0 for k in range(entries)]
    return [(url, render_feed(f"http://{host_of(spec, i)}:80", i, entries - 1, entries, dates))
            for i, url in enumerate(feed_urls(spec, 80))]  # fmt: skip


def one_round(docs: list[tuple[str, bytes]], sanitize: bool) -> float:
    """CPU seconds to parse every document once, on an empty sanitize cache."""
    feedhtml._CACHE = feedhtml._Cache(feedhtml.CACHE_CHARS)  # a first pass: nothing cached
    started = time.process_time()
    for url, body in docs:
        if sanitize:
            parse_safely(parse_feed, body, url, HEADERS, NOW)
        else:
            parse_feed(body, url, HEADERS, NOW)
    return time.process_time() - started


def best(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one round (with sanitizing) here")
    args = parser.parse_args(argv)
    docs = bodies(args.feeds, args.entries)
    entries = sum(len(parse_feed(body, url, HEADERS, NOW).entries) for url, body in docs)
    if args.profile:
        cProfile.runctx("one_round(docs, True)", globals(), {"docs": docs}, args.profile)
    size = sum(len(body) for _, body in docs) / len(docs)
    print(f"{len(docs)} feeds, {entries} entries, {size / 1024:.1f} KiB per body")
    for label, sanitize in (("parse_safely", True), ("parse_feed", False)):
        seconds = best(args.rounds, partial(one_round, docs, sanitize))
        print(f"{label}: {seconds:.3f} s CPU, {seconds / len(docs) * 1e6:.0f} us per feed "
              f"(best of {args.rounds})")  # fmt: skip


if __name__ == "__main__":
    main()
