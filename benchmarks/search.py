"""Benchmark: full-text search over a synthetic archive of N items (issue 16).

What it measures: query latency (p50 and p95 over ``--repeat`` runs of each query of a fixed set:
common, middling and rare words, AND, a phrase, a prefix, OR, NOT, Cyrillic, and the tag and time
filters; each run is ``Store.search`` as the CLI calls it: the first page of 20 hits with their
snippets, and the count of all matches), the index's size (SQLite: the FTS5 table's pages from
``dbstat``; PostgreSQL: ``search_docs`` with its GIN index and TOAST), and what the index adds to a
poll's write: ``apply_polls`` of ``--write-items`` new items with the index and with its write
replaced by a no-op, alternated in rounds on the built archive (items/s of each)::

    python -m benchmarks.search                          # 1,000,000 items, SQLite in a temp dir
    python -m benchmarks.search --items 100000 --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m benchmarks.search --items 2000 --write-items 400 --repeat 3   # the smoke test's

The archive is built through ``Store.apply_polls`` (group commit, as the service writes):
``--feeds`` feeds, each with a tag of five, polled in rounds of ``--per-poll`` new entries (a
title of 6-14 words and a summary of about 30); a third of the feeds write Cyrillic.
``--article-fraction`` of the items then get an article (about 1.5 KB, language en, ru or kk)
through ``apply_article``.
The words come from made-up Zipf-weighted vocabularies, so a query's word is picked by its rank
(0 = the most common). It touches no database but the one it creates (a temporary SQLite file,
``?synchronous=normal``, or a new PostgreSQL schema dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/search.py`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from benchmarks.archive import Database  # noqa: E402
from storage import searchindex  # noqa: E402
from storage.records import (  # noqa: E402
    STATUS_OK,
    Article,
    ArticleResult,
    Entry,
    FeedConfig,
    PollResult,
)
from storage.store import Store  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROUND = timedelta(minutes=15)
OWNER = "search-bench"
LATIN = ([c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")],
         "en")  # fmt: skip
CYRILLIC = ([c + v for c in "бдгклмнпрстқзж" for v in ("а", "е", "и", "о", "ұ", "ай", "ы")],
            "ru")  # fmt: skip


class Vocab:
    """A Zipf-weighted vocabulary of made-up words; sentences drawn from precomputed ones."""

    def __init__(self, rng: random.Random, syllables: list[str], words: int = 5000) -> None:
        made = {"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(words * 2)}
        self.words = sorted(made)[:words]
        rng.shuffle(self.words)  # rank = position: 0 is the most common
        weights = [1.0 / (rank + 1) for rank in range(len(self.words))]
        self.rng = rng
        self.sentences = [" ".join(rng.choices(self.words, weights, k=rng.randint(6, 14)))
                          for _ in range(20_000)]  # fmt: skip

    def text(self, sentences: int) -> str:
        return ". ".join(self.rng.choices(self.sentences, k=sentences)).capitalize() + "."


class Build:
    """Feeds, and rounds of polls applied as the service applies them."""

    def __init__(self, store: Store, args: argparse.Namespace) -> None:
        self.store, self.args = store, args
        self.rng = random.Random(args.seed)
        self.vocabs = {"en": Vocab(self.rng, LATIN[0]), "ru": Vocab(self.rng, CYRILLIC[0])}
        self.urls = [f"https://news{i}.example/feed.xml" for i in range(args.feeds)]
        store.sync_feeds([FeedConfig(u, tags=(f"t{i % 5}",)) for i, u in enumerate(self.urls)], T0)
        self.seq = 0
        self.sample = ""  # a summary written: the phrase query's words come from it
        self.rounds = 0
        self.items = 0

    def vocab(self, feed_id: int) -> Vocab:
        return self.vocabs["ru" if feed_id % 3 == 0 else "en"]

    def entry(self, feed_id: int, when: datetime) -> Entry:
        self.seq += 1
        words = self.vocab(feed_id)
        guid = f"urn:search-bench:{self.seq}"
        summary = words.text(3)
        if not self.sample and words is self.vocabs["en"]:
            self.sample = summary
        return Entry(key=guid, guid=guid, url=f"https://news{feed_id}.example/{self.seq}.html",
                     title=words.rng.choice(words.sentences).capitalize(), summary=summary,
                     published=when)  # fmt: skip

    def round(self, count: int) -> float:
        """Poll every feed once with ``count`` new entries in all; seconds inside apply_polls."""
        self.rounds += 1
        when = T0 + ROUND * self.rounds
        feeds = self.store.claim_due(when, len(self.urls), OWNER, 3600)
        per = max(1, -(-count // len(feeds)))
        results, made = [], 0
        for feed in feeds:
            n = min(per, count - made)
            made += n
            entries = tuple(self.entry(feed.id, when) for _ in range(n))
            results.append(PollResult(
                feed_id=feed.id, lease_owner=OWNER, polled_at=when, status=STATUS_OK,
                next_check=when + ROUND, next_reason="bench", interval=ROUND.seconds,
                error_count=0, http_status=200, entries=entries))  # fmt: skip
        started = time.perf_counter()
        for start in range(0, len(results), 10):  # the service's writer: batches of polls
            for outcome in self.store.apply_polls(results[start : start + 10]):
                if isinstance(outcome, Exception):
                    raise outcome
                self.items += outcome.new_items
        return time.perf_counter() - started

    def articles(self, fraction: float) -> int:
        """Articles for a fraction of the items, each its own transaction (the second stage)."""
        ids = self.rng.sample(range(1, self.items + 1), int(self.items * fraction))
        for item_id in ids:
            language = self.rng.choice(["en", "ru", "kk"])
            words = self.vocabs["en" if language == "en" else "ru"]
            body = "\n\n".join(words.text(4) for _ in range(3))
            article = Article(title=None, text=body, html="", language=language)
            self.store.apply_article(item_id, ArticleResult(article), T0 + ROUND * self.rounds)
        return len(ids)


def build(store: Store, args: argparse.Namespace) -> tuple[Build, dict[str, Any]]:
    b = Build(store, args)
    started, inside = time.perf_counter(), 0.0
    while b.items < args.items:
        inside += b.round(min(args.per_poll * args.feeds, args.items - b.items))
        print(f"  built {b.items:,} items ({b.items / inside:,.0f} items/s in apply_polls)",
              file=sys.stderr, flush=True)  # fmt: skip
    t = time.perf_counter()
    articles = b.articles(args.article_fraction)
    return b, {"items": b.items, "build_items_per_s": round(b.items / inside),
               "articles": articles, "articles_s": round(time.perf_counter() - t, 1),
               "build_wall_s": round(time.perf_counter() - started, 1)}  # fmt: skip


def write_cost(b: Build, items: int, rounds: int = 4) -> dict[str, Any]:
    """apply_polls of new items with the index and without (its write a no-op), alternated."""
    real = searchindex.write
    seconds = {"with_index": 0.0, "without_index": 0.0}
    for n in range(rounds):
        key = "with_index" if n % 2 == 0 else "without_index"
        if key == "without_index":
            searchindex.write = lambda conn, docs: None  # type: ignore[assignment]
        try:
            seconds[key] += b.round(items // rounds)
        finally:
            searchindex.write = real  # type: ignore[assignment]
    each = items // rounds * (rounds // 2)
    rates = {k: round(each / s) for k, s in seconds.items()}
    return rates | {"index_cost": f"{seconds['with_index'] / seconds['without_index'] - 1:+.0%}"}


def queries(b: Build) -> dict[str, Callable[[Store], Any]]:
    en, ru = b.vocabs["en"].words, b.vocabs["ru"].words
    sentence = b.sample.replace(".", "").split()
    since = T0 + ROUND * max(1, b.rounds // 2)
    named = {
        "common word": en[0], "middling word (rank 50)": en[50], "rare word (rank 3000)": en[3000],
        "two words (AND)": f"{en[5]} {en[50]}", "phrase": f'"{sentence[2]} {sentence[3]}"',
        "prefix": f"{en[50][:3]}*", "OR": f"{en[300]} OR {en[400]}", "NOT": f"{en[50]} -{en[0]}",
        "Cyrillic word (rank 50)": ru[50], "Cyrillic two words": f"{ru[3]} {ru[40]}",
    }  # fmt: skip
    out: dict[str, Callable[[Store], Any]] = {
        f"{name}: {q}": (lambda s, q=q: s.search(q)) for name, q in named.items()}  # fmt: skip
    out[f"tag filter: {en[50]} --tag t1"] = lambda s: s.search(en[50], tag="t1")
    out[f"since filter: {en[50]} --since"] = lambda s: s.search(en[50], since=since)
    return out


def latencies(store: Store, b: Build, repeat: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    every: list[float] = []
    for name, run in queries(b).items():
        run(store)  # warm
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            page = run(store)
            times.append((time.perf_counter() - started) * 1000)
        every += times
        found[name] = {"p50_ms": round(statistics.median(times), 2),
                       "p95_ms": round(_p95(times), 2), "total": page.total}  # fmt: skip
    return {"queries": found, "all_p50_ms": round(statistics.median(every), 2),
            "all_p95_ms": round(_p95(every), 2)}  # fmt: skip


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def index_bytes(store: Store) -> int:
    with store.db.read() as conn:
        if store.db.engine.dialect.name == "postgresql":
            sql = "SELECT pg_total_relation_size('search_docs')"
        else:
            sql = "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'item_search%'"
        return int(conn.execute(text(sql)).scalar_one() or 0)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db = Database.fresh(args.database, workdir)
    url = db.url + ("?synchronous=normal" if db.schema is None else "")
    try:
        with Store.open(url) as store:
            b, figures = build(store, args)
            figures["index_bytes"] = index_bytes(store)
            figures["db_bytes"] = db.size_bytes()
            figures |= latencies(store, b, args.repeat)
            figures["write"] = write_cost(b, args.write_items)
        figures["database"] = "postgresql" if db.schema else "sqlite"
        return figures
    finally:
        if not args.keep:
            db.drop()


def report(f: dict[str, Any]) -> Iterator[str]:
    mib = 1024 * 1024
    yield (f"{f['database']}: {f['items']:,} items built at {f['build_items_per_s']:,} items/s "
           f"(apply_polls, index included); {f['articles']:,} articles in {f['articles_s']} s")
    yield (f"index {f['index_bytes'] / mib:,.1f} MiB ({f['index_bytes'] / f['items']:,.0f} B/item)"
           f" of a {f['db_bytes'] / mib:,.1f} MiB database")  # fmt: skip
    for name, q in f["queries"].items():
        hits = f"{q['total']:>9,}" if q["total"] is not None else "  >10,000"
        yield f"  {name:<52} p50 {q['p50_ms']:>8.2f} ms  p95 {q['p95_ms']:>8.2f} ms  {hits} hits"
    yield f"all queries: p50 {f['all_p50_ms']} ms, p95 {f['all_p95_ms']} ms"
    w = f["write"]
    yield (f"poll write: {w['with_index']:,} items/s with the index, {w['without_index']:,} "
           f"without ({w['index_cost']})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--database", help="PostgreSQL admin URL (a schema is made); SQLite if absent")
    p.add_argument("--feeds", type=int, default=50)
    p.add_argument("--per-poll", type=int, default=400, help="new entries per feed per round")
    p.add_argument("--article-fraction", type=float, default=0.02)
    p.add_argument("--repeat", type=int, default=30, help="runs of each query")
    p.add_argument("--write-items", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the database")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        figures = run(args, workdir)
    for line in report(figures):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
