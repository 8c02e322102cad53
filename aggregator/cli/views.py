"""How the CLI shows things: aligned plain text (a URL is never wrapped), JSON for scripts, a
progress bar (rich) on a terminal."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from storage.records import Article, FeedState
from storage.redact import redact_text, redact_url


def shown(feed: FeedState) -> FeedState:
    """The feed as it may be printed: passwords and secret query values redacted (issue 11)."""
    return dataclasses.replace(
        feed,
        url=redact_url(feed.url),
        config_url=feed.config_url and redact_url(feed.config_url),
        redirect_url=feed.redirect_url and redact_url(feed.redirect_url),
        last_error=feed.last_error and redact_text(feed.last_error),
        next_reason=redact_text(feed.next_reason),
    )


def shown_poll(poll: Mapping[str, Any]) -> dict[str, Any]:
    """One row of a feed's poll history, as it may be printed."""
    out = dict(poll)
    for name in ("error", "next_reason"):
        if out.get(name):
            out[name] = redact_text(out[name])
    return out


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def feed_dict(feed: FeedState) -> dict[str, Any]:
    """A feed as ``feeds --json`` prints it: times in ISO 8601, the next poll with its reason."""
    feed = shown(feed)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(feed):
        value = getattr(feed, f.name)
        out[f.name] = iso(value) if isinstance(value, datetime) else value
    out["tags"] = list(feed.tags)
    return out


def print_feeds(feeds: list[FeedState], as_json: bool, now: datetime, wide: bool = False) -> None:
    """One line per feed, its URL's short form first (``feedurls``: `feeds show` takes it) and
    its title; `--wide` adds why the next poll is when it is and the last error. Plain aligned
    text: a URL is never wrapped or cut, whatever the terminal's width."""
    if as_json:
        click.echo(json.dumps([feed_dict(f) for f in feeds], ensure_ascii=False, indent=2))
        return
    if not feeds:
        click.echo("no feeds in the archive yet: `aggregator poll` adds the configured ones")
        return
    from aggregator.cli.feedurls import short_forms

    head = ["FEED", "TITLE", "LAST POLL", "RESULT", "NEXT POLL", "ITEMS"]
    forms = short_forms(feed.url for feed in map(shown, feeds))
    rows = [_feed_row(feed, forms[feed.url], now) for feed in map(shown, feeds)]
    if wide:
        head += ["WHY", "LAST ERROR"]
        rows = [[*row, feed.next_reason, feed.last_error or ""]
                for row, feed in zip(rows, map(shown, feeds), strict=True)]
    for line in aligned([head, *rows], right={5}):
        click.echo(line)


def _feed_row(feed: FeedState, short: str, now: datetime) -> list[str]:
    url = short if feed.active else f"{short} (not in config)"
    return [url, _one_line(feed.title or "-", 40), ago(feed.last_polled, now),
            _result(feed) or "-", "stopped" if feed.gone else ago(feed.next_check, now),
            str(feed.item_count)]


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def aligned(rows: list[list[str]], right: Collection[int] = ()) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; ``right`` columns (numbers) are
    right-aligned; the last column is never padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines


def ago(when: datetime | None, now: datetime) -> str:
    """'5m ago', 'in 2h 10m', 'never': what an operator wants to read in a table."""
    if when is None:
        return "never"
    seconds = int((when - now).total_seconds())
    span = abs(seconds)
    if span < 60:
        text = f"{span}s"
    elif span < 3600:
        text = f"{span // 60}m"
    elif span < 86400:
        text = f"{span // 3600}h {span % 3600 // 60}m"
    else:
        text = f"{span // 86400}d {span % 86400 // 3600}h"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def print_feed(
    feed: FeedState, history: list[dict[str, Any]], as_json: bool, now: datetime
) -> None:
    data = feed_dict(feed)
    feed, history = shown(feed), [shown_poll(poll) for poll in history]
    if as_json:
        data["history"] = [
            {k: iso(v) if isinstance(v, datetime) else v for k, v in poll.items()}
            for poll in history
        ]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"{feed.url}  ({feed.title or 'untitled'})")
    if feed.gone:
        click.echo(f"  polling stopped: {feed.next_reason}")
    else:
        click.echo(f"  next poll      {ago(feed.next_check, now)} ({iso(feed.next_check)}): "
                   f"{feed.next_reason}")
    click.echo(f"  interval       {feed.interval:.0f}s; {feed.error_count} errors in a row")
    validators = f"etag {feed.etag or '-'}; last-modified {feed.last_modified or '-'}"
    click.echo(f"  validators     {validators}")
    click.echo(f"  items          {feed.item_count}")
    if feed.redirect_url:
        click.echo(f"  moving to      {feed.redirect_url} (seen {feed.redirect_count} times)")
    if history and history[0].get("warning"):  # the last poll read the feed only in part
        click.echo(f"  read in part   {history[0]['warning']}")
    rows = [["polled", "result", "new", "next poll: why", "error or warning"]]
    for poll in history:
        code = f" {poll['http_status']}" if poll["http_status"] else ""
        rows.append([ago(poll["polled_at"], now), f"{poll['status'].replace('_', ' ')}{code}",
                     str(poll["new_items"]), poll["next_reason"], _note(poll)[:100]])
    click.echo("  last results:")
    for line in aligned(rows, right={2}):
        click.echo(f"    {line}")


def _note(poll: Mapping[str, Any]) -> str:
    if poll["error"]:
        return str(poll["error"])
    return f"warning: {poll['warning']}" if poll.get("warning") else ""


def _result(feed: FeedState) -> str:
    if feed.last_status is None:
        return ""
    code = f" {feed.last_http_status}" if feed.last_http_status else ""
    return f"{feed.last_status.replace('_', ' ')}{code}"


def summary(totals: Any, configured: int | None = None,
            unpolled: Mapping[str, int] | None = None) -> str:  # fmt: skip
    """One line; the feed counts add up to the feeds ``configured``: each was polled (ok, not
    modified, failed) or is ``unpolled`` for a reason (stopped, held by another process)."""
    head = "feeds" if configured is None else f"{configured} feeds"
    line = f"{head}: {totals.ok} ok, {totals.not_modified} not modified, {totals.failed} failed"
    if unpolled:
        reasons = ", ".join(f"{count} {why}" for why, count in unpolled.items())
        line += f", {sum(unpolled.values())} not polled ({reasons})"
    line += f"; {totals.new_items} new items"
    if totals.articles_ok or totals.articles_failed:
        line += f"; articles: {totals.articles_ok} fetched, {totals.articles_failed} failed"
    return line


def unpolled(counts: Mapping[bool, int]) -> dict[str, int]:
    """Why configured feeds were not polled by a run (``Store.unpolled_since``: by gone)."""
    reasons = {"stopped after 410 Gone": counts.get(True, 0),
               "held by another process": counts.get(False, 0)}
    return {why: count for why, count in reasons.items() if count}


def failures(totals: Any) -> list[str]:
    """Each failed feed and page, one line each (the latest, if there were very many), with
    secrets in their URLs redacted."""
    lines = [f"  feed failed: {redact_text(e)}" for e in totals.errors]
    if (more := totals.failed - len(totals.errors)) > 0:
        lines.append(f"  ... and {more} more failed feeds (`aggregator feeds` lists their errors)")
    lines += [f"  page failed: {redact_text(e)}" for e in totals.page_errors]
    if (more := totals.articles_failed - len(totals.page_errors)) > 0:
        lines.append(f"  ... and {more} more failed pages")
    return lines


def import_summary(summary: Any) -> str:
    fields = (dataclasses.asdict(summary)
              if dataclasses.is_dataclass(summary) and not isinstance(summary, type)
              else dict(summary))
    return "imported: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in fields.items())


STAT_LABELS = {
    "feeds": "feeds", "active_feeds": "  still configured", "items": "items",
    "sightings": "sightings", "duplicates_folded": "duplicates folded", "revisions": "revisions",
    "captures": "captures", "blobs": "stored bodies", "captures_raw_bytes": "captured bytes",
    "blobs_raw_bytes": "  after deduplication", "blobs_stored_bytes": "  after compression",
    "compression_ratio": "compression ratio",
}
ARTICLE_WORDS = {"ok": "fetched", "failed": "failed", "pending": "to fetch",
                 "off": "not fetched (feed set so)"}


def print_stats(figures: Mapping[str, Any], as_json: bool) -> None:
    """Words and aligned numbers; bytes also in KiB/MiB; articles one line per state."""
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False, indent=2, default=str))
        return
    rows = [[label, _stat(key, figures.get(key))] for key, label in STAT_LABELS.items()]
    articles = figures.get("articles") or {}
    rows.append(["articles", f"{sum(articles.values()):,}"])
    for state, count in sorted(articles.items(), key=lambda kv: -kv[1]):
        rows.append([f"  {ARTICLE_WORDS.get(state, state)}", f"{count:,}"])
    for line in aligned(rows, right={1}):
        click.echo(line)


def _stat(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "compression_ratio":
        return f"{value:.2f}x"
    if key.endswith("_bytes") and value >= 1024:
        return f"{value:,} ({human_bytes(value)})"
    return f"{value:,}" if isinstance(value, int) else str(value)


def human_bytes(size: int) -> str:
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def print_article(article: Article) -> None:
    sources = dict(article.sources)
    for name in ("title", "published", "modified", "authors", "language", "canonical_url",
                 "image", "dateline"):
        value, key = getattr(article, name), name
        if name == "published" and value is None and article.published_date:
            value, key = f"{article.published_date.isoformat()} (day only)", "published_date"
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = ", ".join(value)
        origin = f"  [{sources[key]}]" if key in sources else ""
        click.echo(f"{name:<14}{value if value not in (None, '') else '-'}{origin}")
    body_source = sources.get("text") or sources.get("html") or "?"
    click.echo(f"{'text':<14}{len(article.text)} characters  [{body_source}]")
    click.echo(f"{'extractor':<14}{article.extractor}\n")
    click.echo(article.text)


@contextmanager
def progress(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal; nothing when output goes to a file or a pipe."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(file=sys.stderr), transient=True)
    task = bar.add_task("poll", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)
