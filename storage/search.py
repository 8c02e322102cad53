"""Full-text search over the archive: the records a search returns (issue 16).

``Store.search`` answers with a ``SearchPage`` of ``SearchHit``s, best first. A hit's
``snippet`` is plain text (never HTML): the matched words are wrapped in ``MARK_START`` and
``MARK_END``, two private-use characters that stored text never carries (the index drops them),
so a renderer escapes the snippet first and then turns the markers into ``<mark>``, or into
``[``/``]`` on a terminal (``highlight``). The query syntax is ``storage.searchquery``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, select, text

from storage.dialect import is_postgres
from storage.errors import SearchQueryError
from storage.items import with_offset
from storage.searchindex import ALL_CONFIGS, doc
from storage.searchquery import (
    Node,
    Term,
    fold,
    matcher,
    parse,
    terms,
    to_fts5,
    to_tsquery,
    word_spans,
)
from storage.tables import UTCDateTime, feeds, items

MARK_START = "\ue000"  # opens a highlighted span in ``SearchHit.snippet``
MARK_END = "\ue001"  # closes it


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One item that matched, with the best passage of its text."""

    item_id: int
    feed_url: str  # the feed that first brought the item
    title: str | None
    url: str | None
    published: datetime | None  # timezone-aware, in the source's own offset; None if unknown
    snippet: str  # plain text, matches between MARK_START and MARK_END
    rank: float  # higher is better; comparable within one page of one query only


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of hits, and how many items match in all: None when more than ``COUNT_LIMIT``
    (10,000) do, which are not counted (counting every match of a common word would cost as
    much again as ranking them)."""

    hits: list[SearchHit]
    total: int | None


def highlight(snippet: str, start: str = "[", end: str = "]") -> str:
    """The snippet with its markers replaced (a terminal's ``[word]``, or escaped HTML's tags)."""
    return snippet.replace(MARK_START, start).replace(MARK_END, end)


# -- the search itself, in the caller's read transaction -----------------------------------

COUNT_LIMIT = 10_000  # matches counted for ``SearchPage.total``; beyond, total is None
SNIPPET_WORDS = 30
SNIPPET_SCAN = 50_000  # characters of the text looked through for the best passage
_CONTEXT = 4  # words shown before the first match of the passage
_SPACE = re.compile(r"\s+")


def run_search(
    conn: Connection, query: str, *, feed_url: str | None, tag: str | None,
    since: datetime | None, until: datetime | None, limit: int, offset: int,
) -> SearchPage:  # fmt: skip
    """``Store.search``: parse, match and rank in the database, then the page's snippets."""
    if limit < 1 or offset < 0:
        raise SearchQueryError(f"limit must be at least 1 and offset at least 0, "
                               f"not {limit} and {offset}")  # fmt: skip
    node = parse(query)
    feed_ids = _feed_ids(conn, feed_url, tag)
    if feed_ids == []:
        return SearchPage([], 0)
    if is_postgres(conn):
        match = _pg_tsquery(conn, node)
        if match is None:
            return SearchPage([], 0)
        sql, first, key = _PG_FROM, {"tsq": match}, "search_docs.item_id"
        rank, order = "ts_rank_cd(search_docs.doc, q.q)", "rank DESC"
    else:
        sql, first, key = _SQLITE_FROM, {"match": to_fts5(node)}, "item_search.rowid"
        rank, order = "-item_search.rank", "item_search.rank"
    joined, where, binds = _filters(key, feed_ids, since, until)
    sql = sql.format(join=joined)
    params: dict[str, Any] = {**first, "since": since, "until": until, "feeds": feed_ids}
    page = text(f"SELECT {key} AS id, {rank} AS rank {sql}{where} ORDER BY {order}, {key} DESC "
                "LIMIT :limit OFFSET :offset").bindparams(*binds)  # fmt: skip
    found = conn.execute(page, params | {"limit": limit, "offset": offset}).all()
    total: int | None = len(found) + offset
    if len(found) == limit or (offset and not found):
        count = text(f"SELECT count(*) FROM (SELECT 1 {sql}{where} LIMIT :cap) AS m")
        total = int(conn.execute(count.bindparams(*binds), params | {"cap": COUNT_LIMIT + 1})
                    .scalar_one())  # fmt: skip
        total = None if total > COUNT_LIMIT else total
    return SearchPage(_hits(conn, [(int(r.id), float(r.rank)) for r in found], node), total)


# The index alone when no filter needs the item's row: joining every match to ``items`` was a
# third of a common word's time. (Search sees no stale row: deletes take their index rows.)
_SQLITE_FROM = "FROM item_search{join} WHERE item_search MATCH :match"
_PG_FROM = (
    "FROM search_docs{join} CROSS JOIN (SELECT CAST(:tsq AS tsquery) AS q) AS q "
    "WHERE search_docs.doc @@ q.q"
)


def _filters(
    key: str, feed_ids: list[int] | None, since: datetime | None, until: datetime | None
) -> tuple[str, str, list[BindParameter[Any]]]:
    """The optional conditions (a join with ``items`` if the time is asked, SQL text with named
    parameters only) for matches whose item id is ``key``."""
    where, binds = "", [bindparam("since", type_=UTCDateTime()),
                        bindparam("until", type_=UTCDateTime())]  # fmt: skip
    when = "coalesce(items.published, items.first_seen)"
    if since is not None:
        where += f" AND {when} >= :since"
    if until is not None:
        where += f" AND {when} < :until"
    if feed_ids is not None:
        # SQLite: the unary plus keeps the rowid out of FTS5's plan; given to it, the planner ran
        # the full-text query once per item of the feeds (100,000 items: 4 s instead of 0.1)
        plus = "+" if key == "item_search.rowid" else ""
        where += f" AND {plus}{key} IN (SELECT item_id FROM sightings WHERE feed_id IN :feeds)"
        binds.append(bindparam("feeds", expanding=True))
    joined = f" JOIN items ON items.id = {key}" if since or until else ""
    return joined, where, [b for b in binds if f":{b.key}" in where]


def _feed_ids(conn: Connection, feed_url: str | None, tag: str | None) -> list[int] | None:
    """The feeds an item must have been seen in (None: any); a feed is named by its URL or the
    URL the configuration gives it; its tags are the configuration's (``feeds.tags``)."""
    if feed_url is None and tag is None:
        return None
    rows = conn.execute(select(feeds.c.id, feeds.c.url, feeds.c.config_url, feeds.c.tags))
    return sorted(
        int(r.id) for r in rows
        if (feed_url is None or feed_url in (r.url, r.config_url))
        and (tag is None or tag in (r.tags or ()))
    )  # fmt: skip


_PG_VARIANTS = text(
    "SELECT t.n, CAST(CASE t.kind "
    "WHEN 'prefix' THEN to_tsquery(CAST(c.cfg AS regconfig), t.txt || ':*') "
    "WHEN 'phrase' THEN phraseto_tsquery(CAST(c.cfg AS regconfig), t.txt) "
    "ELSE plainto_tsquery(CAST(c.cfg AS regconfig), t.txt) END AS text) AS q "
    "FROM unnest(CAST(:texts AS text[]), CAST(:kinds AS text[])) "
    "WITH ORDINALITY AS t(txt, kind, n) "
    "CROSS JOIN unnest(CAST(:cfgs AS text[])) WITH ORDINALITY AS c(cfg, m) ORDER BY t.n, c.m"
)


def _pg_tsquery(conn: Connection, node: Node) -> str | None:
    """The tree as tsquery text: each term asked of PostgreSQL under every configuration the
    index uses (an item's words were stemmed by its language's), the distinct answers OR-ed."""
    found = list(dict.fromkeys(terms(node)))
    params = {"texts": [" ".join(t.words) for t in found], "kinds": [t.kind for t in found],
              "cfgs": list(ALL_CONFIGS)}  # fmt: skip
    variants: dict[Term, list[str]] = {t: [] for t in found}
    for row in conn.execute(_PG_VARIANTS, params):
        options = variants[found[int(row.n) - 1]]
        if row.q and row.q not in options:
            options.append(row.q)
    return to_tsquery(node, variants)


def _hits(conn: Connection, ranked: list[tuple[int, float]], node: Node) -> list[SearchHit]:
    if not ranked:
        return []
    query = (
        select(items.c.id, items.c.title, items.c.url, items.c.published,
               items.c.published_offset, items.c.summary, items.c.article,
               feeds.c.url.label("feed_url"))
        .join(feeds, feeds.c.id == items.c.feed_id)
        .where(items.c.id.in_([item_id for item_id, _ in ranked]))
    )  # fmt: skip
    rows = {int(r.id): r for r in conn.execute(query)}
    hit = matcher(node)
    out = []
    for item_id, rank in ranked:
        r = rows.get(item_id)
        if r is None:  # deleted since it was ranked (PostgreSQL reads each statement afresh)
            continue
        d = doc(item_id, r.title, r.summary, r.article)
        out.append(SearchHit(item_id, r.feed_url, r.title, r.url,
                             with_offset(r.published, r.published_offset),
                             snippet([d.summary, d.body] if d.summary or d.body else [d.title],
                                     hit), rank))  # fmt: skip
    return out


def snippet(texts: list[str], hit: Callable[[str], bool]) -> str:
    """The passage of ``texts`` (joined) with the most highlighted words in ``SNIPPET_WORDS``
    words, its matches marked; the start of the text when nothing matches."""
    body = "\n".join(t for t in texts if t)[:SNIPPET_SCAN]
    spans = list(word_spans(body))
    if not spans:
        return ""
    marks = [hit(fold(body[a:b])) for a, b in spans]
    best, best_at, count = -1, 0, 0
    for i, marked in enumerate(marks):
        count += marked
        if i >= SNIPPET_WORDS:
            count -= marks[i - SNIPPET_WORDS]
        if count > best:
            best, best_at = count, max(0, i - SNIPPET_WORDS + 1)
    first = next((i for i in range(best_at, len(marks)) if marks[i]), best_at) if best else 0
    start = max(0, min(first - _CONTEXT, len(spans) - SNIPPET_WORDS))
    end = min(len(spans), start + SNIPPET_WORDS)
    parts = ["…"] if start else []
    for i in range(start, end):
        a, b = spans[i]
        if i > start:
            parts.append(body[spans[i - 1][1] : a])
        parts.append(f"{MARK_START}{body[a:b]}{MARK_END}" if marks[i] else body[a:b])
    tail = body[spans[end - 1][1] :]
    parts.append("…" if end < len(spans) else tail)
    return _SPACE.sub(" ", "".join(parts)).strip()
