"""Benchmark: build a synthetic archive of N items through ``Store.apply_poll``, export it.

What it measures (issue 5): the build rate (items/s), the JSON Lines export rate (items/s) and the
export's peak memory at each checkpoint (default 100k and the full size; each export runs in a
fresh subprocess, so its ``ru_maxrss`` is its own and must not grow with the archive), the database
size per item, and the raw pages' compression ratio from ``Store.stats()``::

    python -m benchmarks.archive                         # 1,000,000 items, SQLite in a temp dir
    python -m benchmarks.archive --items 2000 --checkpoints 1000   # what the smoke test runs
    python -m benchmarks.archive --database postgresql+psycopg://postgres@127.0.0.1:5432/test

The build goes through the same write path as the service: feeds are claimed (leased) and each
poll is one ``apply_poll`` transaction of ``--per-poll`` entries, of which a few were already seen
(one of them with a changed title, so revisions happen), some are copies of another feed's story
(folded into one item with two sightings), and a ``--article-fraction`` of the new entries then
gets an extracted article (~3 KB of text) with its raw page (~25 KB of HTML, stored
zstd-compressed), written by ``apply_article`` as the service's second stage does. No feed
captures are stored, so ``Store.stats()``'s compression ratio is the pages' alone. The text is
drawn from a Zipf-weighted vocabulary of made-up words: less repetitive than a 100-word list,
still somewhat kinder to the compressor than real prose.

It touches no database but the one it creates (a temporary SQLite file, or a new PostgreSQL
schema that it drops afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/archive.py`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from storage.records import (  # noqa: E402
    STATUS_OK,
    Article,
    ArticleResult,
    Capture,
    Entry,
    FeedConfig,
    FeedState,
    PollResult,
)
from storage.store import Store  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROUND = timedelta(minutes=15)  # synthetic time between two polls of a feed
OWNER = "archive-bench"


# ---------------------------------------------------------------- synthetic content (seeded)

class Text:
    """Sentences from a made-up Zipfian vocabulary, precomputed once so that building is cheap."""

    def __init__(self, rng: random.Random, words: int = 4000, sentences: int = 20000) -> None:
        syllables = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
        vocab = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(words)]
        weights = [1.0 / (rank + 1) for rank in range(words)]
        self.rng = rng
        self.sentences = [
            " ".join(rng.choices(vocab, weights, k=rng.randint(8, 24))).capitalize() + "."
            for _ in range(sentences)
        ]

    def sentence(self) -> str:
        return self.rng.choice(self.sentences)

    def paragraphs(self, count: int, per: int = 5) -> list[str]:
        return [" ".join(self.rng.choices(self.sentences, k=per)) for _ in range(count)]


def site_chrome(host: str) -> tuple[str, str]:
    """A site's header and footer: navigation, inline script and style, as real pages carry."""
    rng = random.Random(host)
    nav = "".join(f'<li><a href="https://{host}/s/{rng.randrange(10**6)}">Section {i}</a></li>'
                  for i in range(60))
    script = "".join(f"var k{i}={rng.randrange(10**9)};function f{i}(a){{return a*{i}+k{i}}}\n"
                     for i in range(120))
    style = "".join(f".c{i}{{margin:{i % 7}px;color:#{rng.randrange(16**6):06x}}}"
                    for i in range(150))
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><style>{style}</style>'
            f"<script>{script}</script></head><body><header><nav><ul>{nav}</ul></nav></header>")
    foot = f"<footer><ul>{nav}</ul><p>© {host}</p></footer></body></html>"
    return head, foot


@dataclass
class Synth:
    """Makes entries, articles and pages for feed ``f``, poll ``n``; deterministic per seed."""

    text: Text
    hosts: int
    chrome: dict[str, tuple[str, str]] = field(default_factory=dict)

    def host(self, feed: int) -> str:
        return f"news{feed % self.hosts}.example"

    def entry(self, feed: int, seq: int, when: datetime, title: str | None = None) -> Entry:
        host = self.host(feed)
        guid = f"urn:archive-bench:{feed}:{seq}"
        summary = " ".join(self.text.sentence() for _ in range(3))
        return Entry(key=guid, guid=guid, url=f"https://{host}/{feed}/{seq}.html",
                     title=title or self.text.sentence()[:90], summary=summary,
                     authors=("Staff reporter",), published=when)

    def article(self, entry: Entry, when: datetime) -> ArticleResult:
        assert entry.url is not None
        paragraphs = self.text.paragraphs(4, 5)  # about 3 KB of text
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        host = entry.url.split("/")[2]
        head, foot = self.chrome.setdefault(host, site_chrome(host))
        page = f"{head}<main><article><h1>{entry.title}</h1>{body}</article></main>{foot}"
        article = Article(title=entry.title, text="\n\n".join(paragraphs), html=body,
                          authors=entry.authors, published=when, language="en",
                          canonical_url=entry.url, sources=(("text", "generic"),),
                          extractor="archive-bench/1")
        capture = Capture(kind="page", url=entry.url, final_url=entry.url, status=200,
                          headers=(("content-type", "text/html; charset=utf-8"),),
                          fetched_at=when, body=page.encode())
        return ArticleResult(article=article, capture=capture)


# ---------------------------------------------------------------- building

@dataclass
class Plan:
    items: int
    feeds: int
    per_poll: int
    article_fraction: float
    seen_again: int = 5  # entries of the previous poll repeated in the next (one retitled)
    copy_fraction: float = 0.02  # entries that also appear in another feed (folded)


@dataclass
class Build:
    """The running build: how far each feed got, and totals from the PollSummaries."""

    plan: Plan
    synth: Synth
    rng: random.Random
    next_seq: dict[int, int] = field(default_factory=dict)
    items: int = 0
    folded: int = 0
    revisions: int = 0
    polls: int = 0
    seconds: float = 0.0  # inside apply_poll and apply_article
    wall: float = 0.0  # the whole build, making the synthetic entries included

    def poll(self, feed: FeedState, index: int, when: datetime
             ) -> tuple[PollResult, list[tuple[Entry, ArticleResult]]]:
        """The poll's result, and the articles then fetched for some of its new entries."""
        start = self.next_seq.get(index, 0)
        count = min(self.plan.per_poll, self.plan.items - self.items)
        entries = [self.synth.entry(index, s, when) for s in range(start, start + count)]
        self.next_seq[index] = start + count
        again = [self.synth.entry(index, s, when - ROUND)
                 for s in range(max(0, start - self.plan.seen_again), start)]
        if again:  # the feed retitles one story it already carried: a new revision
            again[-1] = Entry(**{**_fields(again[-1]), "title": f"Updated: {again[-1].title}"})
        copies = [self.synth.entry(index - 1, s, when) for s in range(start, start + count)
                  if index and self.rng.random() < self.plan.copy_fraction]
        articles = [(e, self.synth.article(e, when)) for e in entries
                    if self.rng.random() < self.plan.article_fraction]
        return PollResult(feed_id=feed.id, lease_owner=OWNER, polled_at=when, status=STATUS_OK,
                          next_check=when + ROUND, next_reason="bench", interval=ROUND.seconds,
                          error_count=0, http_status=200,
                          entries=(*entries, *again, *_rekeyed(copies, index))), articles

    def round(self, store: Store, when: datetime, order: dict[int, int]) -> None:
        claimed = store.claim_due(when, self.plan.feeds, OWNER, 3600)
        for feed in claimed:
            if self.items >= self.plan.items:
                store.release(feed.id, OWNER)
                continue
            result, articles = self.poll(feed, order[feed.id], when)
            started = time.perf_counter()
            summary = store.apply_poll(result)
            for entry, article in articles:  # as the service's second stage writes them
                item_id = store.item_id_for_url(entry.url)
                if item_id is not None:
                    self.revisions += store.apply_article(item_id, article, when)
            self.seconds += time.perf_counter() - started
            self.items += summary.new_items
            self.folded += summary.duplicates_folded
            self.revisions += summary.revisions
            self.polls += 1


def _fields(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in Entry.__slots__}


def _rekeyed(copies: list[Entry], feed: int) -> list[Entry]:
    """Another feed's story under this feed's own guid (syndication): same URL, one item."""
    return [Entry(**{**_fields(e), "key": f"copy:{feed}:{e.key}", "guid": f"copy:{feed}:{e.key}"})
            for e in copies]


def build_until(store: Store, build: Build, target: int, order: dict[int, int]) -> None:
    """Poll rounds until the archive holds ``target`` items (synthetic time advances per round)."""
    started = time.perf_counter()
    while build.items < target:
        when = T0 + ROUND * (build.polls // build.plan.feeds + 1)
        before = build.items
        build.round(store, when, order)
        if build.items == before:
            raise RuntimeError("archive benchmark: a round added no items")
        print(f"  built {build.items:,} items ({build.items / build.seconds:,.0f} items/s in "
              f"apply_poll and apply_article; {time.perf_counter() - started:,.0f} s wall)",
              file=sys.stderr, flush=True)
    build.wall += time.perf_counter() - started


# ---------------------------------------------------------------- export, in a fresh process

def export_child(database: str, out: Path) -> dict[str, Any]:
    """Runs in its own process: export everything to JSON Lines; report time and peak RSS."""
    from storage.export import write_export
    from storage.records import ExportFilter

    with Store.open(database) as store:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        count = write_export(store, out, "jsonl", ExportFilter())
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"items": count, "seconds": round(seconds, 2), "items_per_s": round(count / seconds),
            "peak_rss_mib": round(peak, 1), "rss_before_export_mib": round(baseline, 1),
            "file_bytes": out.stat().st_size}


def export_in_subprocess(database: str, workdir: Path, keep: bool) -> dict[str, Any]:
    out = workdir / "export.jsonl"
    cmd = [sys.executable, "-m", "benchmarks.archive", "--export-child", str(out),
           "--database", database]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"export subprocess failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not keep:
        out.unlink(missing_ok=True)
    return figures


# ---------------------------------------------------------------- databases

@dataclass
class Database:
    """A fresh database for the run: a SQLite file in ``workdir`` or a new PostgreSQL schema."""

    url: str
    workdir: Path
    schema: str | None = None
    admin: str | None = None

    @classmethod
    def fresh(cls, admin_url: str | None, workdir: Path) -> Database:
        if admin_url is None:
            return cls(f"sqlite:///{workdir / 'archive.db'}", workdir)
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return cls(url.render_as_string(hide_password=False), workdir, schema, admin_url)

    def size_bytes(self) -> int:
        if self.schema is None:
            return sum(p.stat().st_size for p in self.workdir.glob("archive.db*"))
        query = text("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = :s AND c.relkind IN ('r', 'm')")
        with create_engine(self.url).connect() as conn:
            return int(conn.execute(query, {"s": self.schema}).scalar_one())

    def drop(self) -> None:
        if self.schema is not None and self.admin is not None:
            with create_engine(self.admin, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))


# ---------------------------------------------------------------- the run

def checkpoints(spec: str, items: int) -> list[int]:
    points = sorted({int(float(p)) for p in spec.split(",") if p.strip()} | {items})
    return [p for p in points if 0 < p <= items]


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db = Database.fresh(args.database, workdir)
    plan = Plan(args.items, args.feeds, args.per_poll, args.article_fraction)
    rng = random.Random(args.seed)
    build = Build(plan, Synth(Text(rng), hosts=max(1, args.feeds // 10)), rng)
    figures: dict[str, Any] = {"items": args.items, "database": db.url.split(":")[0],
                               "plan": vars(plan), "exports": []}
    try:
        with Store.open(db.url) as store:
            store.sync_feeds([FeedConfig(url=f"https://{build.synth.host(i)}/feed/{i}.xml")
                              for i in range(args.feeds)], T0)
            order = {f.id: int(f.url.rsplit("/", 1)[1][:-4]) for f in store.list_feeds()}
            for point in checkpoints(args.checkpoints, args.items):
                build_until(store, build, point, order)
                figures["exports"].append(export_in_subprocess(db.url, workdir, args.keep))
            figures["stats"] = store.stats()
        figures |= summarize(build, db.size_bytes())
    finally:
        if not args.keep:
            db.drop()
    return figures


def summarize(build: Build, size: int) -> dict[str, Any]:
    return {"build_seconds": round(build.seconds, 1), "polls": build.polls,
            "build_items_per_s": round(build.items / build.seconds),
            "build_wall_seconds": round(build.wall, 1),
            "build_wall_items_per_s": round(build.items / build.wall),
            "db_bytes": size, "db_bytes_per_item": round(size / build.items)}


def report(figures: dict[str, Any]) -> Iterator[str]:
    stats = figures["stats"]
    yield (f"archive of {stats['items']:,} items ({figures['database']}), "
           f"{stats['sightings']:,} sightings, {stats['revisions']:,} revisions, "
           f"{stats['captures']:,} page captures")
    yield (f"build:  {figures['build_items_per_s']:,} items/s inside apply_poll "
           f"({figures['build_seconds']:,.0f} s in {figures['polls']:,} transactions); "
           f"{figures['build_wall_items_per_s']:,} items/s wall, making the entries included")
    for exp in figures["exports"]:
        yield (f"export: {exp['items']:>9,} items in {exp['seconds']:,.1f} s = "
               f"{exp['items_per_s']:,} items/s, peak RSS {exp['peak_rss_mib']:.0f} MiB "
               f"(after open {exp['rss_before_export_mib']:.0f} MiB), "
               f"{exp['file_bytes'] / exp['items']:,.0f} bytes/item")
    yield (f"database: {figures['db_bytes'] / 2**20:,.0f} MiB = "
           f"{figures['db_bytes_per_item']:,} bytes/item")
    yield (f"raw pages: {stats['blobs_raw_bytes'] / 2**20:,.0f} MiB stored as "
           f"{stats['blobs_stored_bytes'] / 2**20:,.0f} MiB: ratio {stats['compression_ratio']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--checkpoints", default="100000", help="also export at these sizes (a,b,...)")
    p.add_argument("--database", help="PostgreSQL URL (a fresh schema is made); default SQLite")
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--per-poll", type=int, default=100, help="new entries per poll")
    p.add_argument("--article-fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, help="where the SQLite file goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the database and the export file")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--export-child", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export_child:
        print(json.dumps(export_child(args.database, args.export_child)))
        return
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
            figures = run(args, Path(tmp))
    for line in report(figures):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
