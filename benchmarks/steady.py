"""The write of an archive's steady state: feeds that changed, most of their entries known.

On the real web a pass finds most feeds unchanged (304) and a few with one new entry beside
the ones already archived, whose articles were fetched long ago. This times ``apply_polls`` of
such batches: ``--feeds`` feeds (one batch), each with ``--known`` known entries whose items
hold an article of ``--article-kb`` kilobytes of JSON, and one new entry, ``--rounds`` times.
Per round: CPU seconds of this process (the best round is the headline), wall seconds, and
what the round wrote: on SQLite the bytes this process passed to ``write``/``pwrite``
(``wchar`` of ``/proc/self/io``: database and WAL), on PostgreSQL the server's WAL bytes
(``pg_current_wal_lsn``)::

    python -m benchmarks.steady [--feeds 64] [--known 20] [--article-kb 40] [--rounds 5]
        [--database postgresql+psycopg://…]

Storage only: no HTTP, no parsing (``benchmarks.poll`` times whole passes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from benchmarks.poll import fresh_database  # noqa: E402  (after the path fix for a checkout)
from storage.records import STATUS_OK, Entry, FeedConfig, PollResult  # noqa: E402
from storage.store import Store  # noqa: E402
from storage.tables import items  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def story(feed: int, name: str) -> Entry:
    return Entry(key=f"{feed}-{name}", guid=f"{feed}-{name}",
                 url=f"https://f{feed}.example/story/{name}", title=f"Story {feed} {name}",
                 summary=f"<p>What happened in story {name}. " + "More words here. " * 8 + "</p>")


def batch(store: Store, feeds: int, known: int, now: datetime, new: str | None) -> list[int]:
    """Claim every feed at ``now`` and write one poll of each; the polls' new item counts."""
    claimed = {f.url: f for f in store.claim_due(now, 100_000, "bench", 300)}
    results = []
    for i in range(feeds):
        entries = [story(i, str(k)) for k in range(known)]
        if new is not None:
            entries.insert(0, story(i, new))
        feed = claimed[f"https://f{i}.example/feed"]
        results.append(PollResult(
            feed_id=feed.id, lease_owner="bench", polled_at=now, status=STATUS_OK,
            next_check=now + timedelta(minutes=15), next_reason="interval", interval=900.0,
            error_count=0, http_status=200, entries=tuple(entries)))  # fmt: skip
    return [getattr(s, "new_items", -1) for s in store.apply_polls(results)]


@dataclass
class Round:
    cpu: float
    wall: float
    written_mb: float


def written(store: Store) -> int:
    """Bytes written so far: the server's WAL position on PostgreSQL, this process's writes on
    SQLite (the database file and its WAL)."""
    if store.db.engine.dialect.name == "postgresql":
        with store.db.engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_current_wal_lsn() - '0/0'")).scalar_one())
    with Path("/proc/self/io").open() as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


def run(url: str, feeds: int, known: int, article_kb: int, rounds: int) -> list[Round]:
    """Each round's ``apply_polls``: CPU and wall seconds, megabytes written."""
    with Store.open(url) as store:
        store.sync_feeds([FeedConfig(f"https://f{i}.example/feed") for i in range(feeds)], T0)
        assert batch(store, feeds, known, T0, None) == [known] * feeds
        article = {"title": "t", "text": "word " * (article_kb * 100), "language": "en",
                   "html": "<p>" + "word " * (article_kb * 100) + "</p>"}  # fmt: skip
        with store.db.write() as conn:
            conn.execute(items.update().values(article=article, article_status="ok"))
        measured = []
        for n in range(1, rounds + 1):
            before, cpu, wall = written(store), time.process_time(), time.perf_counter()
            made = batch(store, feeds, known, T0 + timedelta(hours=n), f"new{n}")
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            measured.append(Round(cpu, wall, (written(store) - before) / 1e6))
            assert made == [1] * feeds, made
    return measured


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=64)
    parser.add_argument("--known", type=int, default=20)
    parser.add_argument("--article-kb", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", help="a PostgreSQL URL (a fresh schema in it) instead of "
                        "a SQLite file")  # fmt: skip
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database, Path(tmp)) as url:
        measured = run(url, args.feeds, args.known, args.article_kb, args.rounds)
    what = "WAL MB" if args.database else "MB written"
    print(f"apply_polls of {args.feeds} changed feeds ({args.known} known entries with "
          f"{args.article_kb} KB articles, 1 new each), CPU s per round: "
          + " ".join(f"{r.cpu:.3f}" for r in measured)
          + f"; best {min(r.cpu for r in measured):.3f}\nwall s per round: "
          + " ".join(f"{r.wall:.3f}" for r in measured) + f"\n{what} per round: "
          + " ".join(f"{r.written_mb:.1f}" for r in measured))


if __name__ == "__main__":
    main()
