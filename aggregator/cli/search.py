"""``aggregator search``: full-text search of the archive, and ``--reindex`` of an archive made
before the index existed. The syntax is ``storage/searchquery.py``'s; the store does the work.

Imports only click at module level (the store loads inside the command): ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.app import (
    EXIT_USAGE,
    App,
    command_options,
    fail,
    parse_time,
    require_feed,
)
from aggregator.errors import ArchiverError
from storage.redact import redact_url, strip_credentials

if TYPE_CHECKING:
    from storage.search import SearchHit
    from storage.store import Store

REINDEX_BATCH = 2000  # items per transaction of --reindex

pass_app = click.make_pass_decorator(App)


@click.command()
@command_options
@click.argument("query", required=False)
@click.option("--feed", "feed_url", metavar="URL", help="Only items this feed carried.")
@click.option("--tag", metavar="TAG", help="Only items of feeds with this tag (the config's "
                                           "`tags`).")  # fmt: skip
@click.option("--since", metavar="T", help="Published at or after T (ISO 8601 or an age like "
                                           "7d); first seen, when the date is unknown.")
@click.option("--until", metavar="T", help="... and before T.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="Hits to show.")
@click.option("--offset", default=0, type=click.IntRange(0), help="Hits to skip (paging).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit, one per line.")
@click.option("--reindex", is_flag=True, help="Index the items archived before search "
                                              "existed, in batches; resumable.")
@click.option("--all", "everything", is_flag=True, help="With --reindex: every item again.")
@pass_app
def search(app: App, query: str | None, feed_url: str | None, tag: str | None,
           since: str | None, until: str | None, limit: int, offset: int, as_json: bool,
           reindex: bool, everything: bool) -> None:  # fmt: skip
    """Search titles, summaries and article text; best matches first.

    QUERY: words (all must occur), "a phrase", prefix*, OR, -word or NOT word, (groups).
    Matching ignores case and the accents of Latin letters; see the README.
    """
    if query is None and not reindex:
        raise click.UsageError("give a QUERY to search for, or --reindex")
    if everything and not reindex:
        raise click.UsageError("--all goes with --reindex")
    first, last = parse_time(since), parse_time(until)
    from storage.search import COUNT_LIMIT

    try:
        with app.store(create=False) as store:
            if reindex:
                _reindex(store, restart=everything)
            if query is None:
                return
            if feed_url is not None:
                feed_url = strip_credentials(feed_url)
                require_feed(store, feed_url, "search")
            page = store.search(query, feed_url=feed_url, tag=tag, since=first, until=last,
                                limit=limit, offset=offset)  # fmt: skip
            backlog = store.search_backlog()
    except ArchiverError as exc:
        if exc.stage == "search":  # the query: a usage error
            click.echo(str(exc), err=True)
            sys.exit(EXIT_USAGE)
        fail(exc)
    if backlog is not None:
        click.echo("search: items archived before the search index are not all indexed yet "
                   "(run `aggregator search --reindex`)", err=True)  # fmt: skip
    _show(page.hits, as_json, offset)
    if not as_json:
        shown = f"{offset + 1}-{offset + len(page.hits)} of " if page.hits else ""
        count = f"{page.total}" if page.total is not None else f"more than {COUNT_LIMIT:,}"
        click.echo(f"{shown}{count} matching items", err=True)


def _reindex(store: Store, *, restart: bool) -> None:
    """Batch after batch, each committed: Ctrl-C loses at most the batch in hand."""
    total = 0
    while True:
        done, left = store.reindex_search(REINDEX_BATCH, restart=restart and total == 0)
        restart = False
        total += done
        if left is None:
            click.echo(f"search: index complete ({total} items indexed)", err=True)
            return
        click.echo(f"search: indexed {total} items (up to id {left.done_id} of {left.end_id})",
                   err=True)  # fmt: skip


def _show(hits: list[SearchHit], as_json: bool, offset: int) -> None:
    from storage.search import MARK_END, MARK_START, highlight

    color = not as_json and sys.stdout.isatty()
    for n, hit in enumerate(hits, offset + 1):
        if as_json:
            click.echo(json.dumps(hit_json(hit), ensure_ascii=False))
            continue
        when = hit.published.date().isoformat() if hit.published else "undated"
        click.echo(f"{n}. {hit.title or '(untitled)'}  [{when}]  {redact_url(hit.feed_url)}")
        if hit.url:
            click.echo(f"   {hit.url}")
        start, end = (("\x1b[1m", "\x1b[0m") if color else ("[", "]"))
        snippet = highlight(hit.snippet.replace(MARK_START + MARK_END, ""), start, end)
        click.echo(f"   {snippet}")


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """A hit for scripts: the snippet as plain text, its highlighted spans as [start, end)
    offsets into it (no markup to parse)."""
    from storage.search import MARK_END, MARK_START

    plain: list[str] = []
    spans: list[list[int]] = []
    start = 0
    for ch in hit.snippet:
        if ch == MARK_START:
            start = len(plain)
        elif ch == MARK_END:
            spans.append([start, len(plain)])
        else:
            plain.append(ch)
    return {
        "item_id": hit.item_id, "feed_url": redact_url(hit.feed_url), "title": hit.title,
        "url": hit.url, "published": hit.published.isoformat() if hit.published else None,
        "snippet": "".join(plain), "highlights": spans, "rank": hit.rank,
    }  # fmt: skip
