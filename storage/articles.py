"""Which items still need their article page fetched, and holding them while a worker does it.

A claimed item's ``article_next_try`` moves to the end of the claim's lease: the item is not
handed out again meanwhile, and comes back by itself if the worker dies. A failure without a
retry time is final (status "failed", no next try) so that nothing loops on it.

A claim also marks the item ``INTERRUPTED``; the outcome, stored, replaces the mark. An item
claimed again with the mark still on had no outcome: its process died while fetching it (a
page that crashes or exhausts the process, say). That counts as a failed attempt, towards the
same ``ARTICLE_ATTEMPTS`` cap, so that such a page cannot be re-claimed for ever (issue 10).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, or_, select, update

from storage.dialect import for_update_skip_locked
from storage.records import ARTICLE_ATTEMPTS, ARTICLE_FAILED, ARTICLE_PENDING, PendingArticle
from storage.tables import feeds, items

INTERRUPTED = "fetch: claimed, no outcome stored yet (if this stays, the fetch was interrupted)"
GAVE_UP = f"fetch: interrupted {ARTICLE_ATTEMPTS} times (the process stopped while fetching)"


def _due(now: datetime) -> ColumnElement[bool]:
    pending = and_(
        items.c.article_status == ARTICLE_PENDING,
        or_(items.c.article_next_try.is_(None), items.c.article_next_try <= now),
    )
    retry = and_(items.c.article_status == ARTICLE_FAILED, items.c.article_next_try <= now)
    return and_(items.c.url.is_not(None), or_(pending, retry))


def pending(conn: Connection, now: datetime, limit: int) -> list[PendingArticle]:
    ids = _due_ids(conn, now, limit, lock=False)
    return _describe(conn, ids)


def claim(
    conn: Connection, now: datetime, limit: int, lease_seconds: float
) -> list[PendingArticle]:
    ids = _due_ids(conn, now, limit, lock=True)
    ids = _count_interrupted(conn, ids)
    if ids:
        until = now + timedelta(seconds=lease_seconds)
        conn.execute(update(items).where(items.c.id.in_(ids))
                     .values(article_next_try=until, article_error=INTERRUPTED))  # fmt: skip
    return _describe(conn, ids)


def _count_interrupted(conn: Connection, ids: list[int]) -> list[int]:
    """Count the attempts whose outcome never came; those at the cap are given up. Returns the
    ids still to fetch."""
    if not ids:
        return ids
    marked = and_(items.c.id.in_(ids), items.c.article_error == INTERRUPTED)
    conn.execute(update(items).where(marked).values(
        article_status=ARTICLE_FAILED, article_attempts=items.c.article_attempts + 1))  # fmt: skip
    spent = and_(marked, items.c.article_attempts >= ARTICLE_ATTEMPTS)
    given_up = set(conn.execute(select(items.c.id).where(spent)).scalars())
    if not given_up:
        return ids
    conn.execute(update(items).where(items.c.id.in_(given_up))
                 .values(article_next_try=None, article_error=GAVE_UP))  # fmt: skip
    return [i for i in ids if i not in given_up]


def _due_ids(conn: Connection, now: datetime, limit: int, lock: bool) -> list[int]:
    query = (
        select(items.c.id).where(_due(now)).order_by(items.c.first_seen, items.c.id).limit(limit)
    )
    if lock:
        query = for_update_skip_locked(conn, query)
    return [int(i) for i in conn.execute(query).scalars()]


def _describe(conn: Connection, ids: list[int]) -> list[PendingArticle]:
    if not ids:
        return []
    query = (
        select(
            items.c.id,
            items.c.url,
            items.c.feed_id,
            items.c.article_attempts,
            feeds.c.url.label("feed_url"),
        )
        .join(feeds, feeds.c.id == items.c.feed_id)
        .where(items.c.id.in_(ids))
    )
    rows = {r.id: r for r in conn.execute(query)}
    return [
        PendingArticle(r.id, r.url, r.feed_id, r.feed_url, r.article_attempts)
        for r in (rows[i] for i in ids)
    ]
