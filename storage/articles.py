"""Which items still need their article page fetched, and holding them while a worker does it.

A claimed item's ``article_next_try`` moves to the end of the claim's lease: the item is not
handed out again meanwhile, and comes back by itself if the worker dies. A failure without a
retry time is final (status "failed", no next try) so that nothing loops on it.

A claim also marks the item ``INTERRUPTED``; the outcome, stored, replaces the mark. An item
claimed again with the mark still on had no outcome: its process died while fetching it (a
page that crashes or exhausts the process, say). That counts as a failed attempt, towards the
same ``ARTICLE_ATTEMPTS`` cap, so that such a page cannot be re-claimed for ever (issue 10).

The claimer is named in ``article_leases``: if it is known dead (``storage.holders``), its
claims are freed at the next claim rather than when the lease runs out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select, update

from storage import holders
from storage.dialect import for_update_skip_locked, insert
from storage.records import ARTICLE_ATTEMPTS, ARTICLE_FAILED, ARTICLE_PENDING, PendingArticle
from storage.tables import article_leases, feeds, items

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
    conn: Connection, now: datetime, limit: int, lease_seconds: float, owner: str
) -> list[PendingArticle]:
    ids = _due_ids(conn, now, limit, lock=True)
    ids = _count_interrupted(conn, ids)
    if ids:
        until = now + timedelta(seconds=lease_seconds)
        conn.execute(update(items).where(items.c.id.in_(ids))
                     .values(article_next_try=until, article_error=INTERRUPTED))  # fmt: skip
        rows = [{"item_id": i, "owner": owner} for i in ids]
        stmt = insert(conn, article_leases)
        conn.execute(stmt.on_conflict_do_update(index_elements=["item_id"],
                                                set_={"owner": stmt.excluded.owner}), rows)
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


def settle(conn: Connection, item_id: int) -> None:
    """The item's page outcome is stored: nobody holds it any more."""
    conn.execute(delete(article_leases).where(article_leases.c.item_id == item_id))


def release(conn: Connection, item_ids: list[int], owner: str, now: datetime) -> int:
    """Hand back ``owner``'s claims of ``item_ids`` (their pages were not fetched): due now,
    and no attempt counted for them."""
    held = select(article_leases.c.item_id).where(article_leases.c.owner == owner,
                                                  article_leases.c.item_id.in_(item_ids))
    return _free(conn, held, now, unmark=True)


def free_dead(conn: Connection, now: datetime) -> dict[str, int]:
    """Free the article claims of holders known dead; {owner: pages freed}. Their marks stay:
    the next claim counts the attempt, as a page may be what killed its process."""
    rows = conn.execute(select(article_leases.c.owner, func.count())
                        .group_by(article_leases.c.owner)).all()  # fmt: skip
    counts = {r[0]: int(r[1]) for r in rows}
    gone = holders.dead(conn, counts)
    if gone:
        _free(conn, select(article_leases.c.item_id).where(article_leases.c.owner.in_(gone)), now)
    return {owner: counts[owner] for owner in gone}


def _free(conn: Connection, held: Any, now: datetime, unmark: bool = False) -> int:
    ids = [int(i) for i in conn.execute(held).scalars()]
    if ids:
        conn.execute(update(items).where(items.c.id.in_(ids), items.c.article_next_try > now)
                     .values(article_next_try=now))  # fmt: skip
        if unmark:
            conn.execute(update(items).where(items.c.id.in_(ids),
                                             items.c.article_error == INTERRUPTED)
                         .values(article_error=None))  # fmt: skip
        conn.execute(delete(article_leases).where(article_leases.c.item_id.in_(ids)))
    return len(ids)


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
