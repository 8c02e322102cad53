"""feed HTML of archives written before it was sanitized, sanitized now

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Why: until issue 11 an entry's summary and content were stored as the feed gave them (scripts,
event handlers, ``javascript:`` links and all) and exported so; the program now stores them
under the policy of ``storage.safehtml``. This cleans what older versions stored, so that the
archive is safe whatever its age, and so that the next poll of an entry still in its feed
finds it unchanged (no spurious revision). Changed items get a new ``changed_at`` (an
incremental export picks them up) and content hashes that describe what is stored; a
fingerprint is recomputed only where it was made from the very content now cleaned.

Data only, no schema change: it may sit anywhere in the chain after 0001. Downgrading keeps
the sanitized text (the original bytes are in the feed captures).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from storage.identity import content_fingerprint, content_hash
from storage.safehtml import safe_or_none

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 1000
ITEMS = sa.table(
    "items", sa.column("id", sa.Integer), sa.column("title", sa.Text),
    sa.column("summary", sa.Text), sa.column("content_html", sa.Text),
    sa.column("article", sa.JSON), sa.column("content_hash", sa.Text),
    sa.column("fingerprint", sa.Text), sa.column("changed_at", sa.DateTime),
)  # fmt: skip
REVISIONS = sa.table(
    "revisions", sa.column("id", sa.Integer), sa.column("title", sa.Text),
    sa.column("summary", sa.Text), sa.column("text", sa.Text), sa.column("content_hash", sa.Text),
)  # fmt: skip


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC
    set_item = (
        sa.update(ITEMS).where(ITEMS.c.id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in
                 ("summary", "content_html", "content_hash", "fingerprint", "changed_at")})
    )  # fmt: skip
    set_revision = (
        sa.update(REVISIONS).where(REVISIONS.c.id == sa.bindparam("b_id"))
        .values(summary=sa.bindparam("b_summary"), content_hash=sa.bindparam("b_content_hash"))
    )  # fmt: skip
    for rows in _batches(conn, ITEMS):
        changed = [v for v in (_item(row, now) for row in rows) if v is not None]
        if changed:
            conn.execute(set_item, changed)
    for rows in _batches(conn, REVISIONS):
        changed = [v for v in map(_revision, rows) if v is not None]
        if changed:
            conn.execute(set_revision, changed)


def downgrade() -> None:
    """Nothing to undo: sanitized text is valid at every revision."""


def _batches(conn: sa.Connection, table: sa.TableClause) -> Iterator[list[Any]]:
    after = 0
    while True:
        query = sa.select(table).where(table.c.id > after).order_by(table.c.id).limit(BATCH)
        rows = list(conn.execute(query).all())
        if not rows:
            return
        after = rows[-1].id
        yield rows


def _item(row: Any, now: datetime) -> dict[str, Any] | None:
    summary, content = safe_or_none(row.summary), safe_or_none(row.content_html)
    if (summary, content) == (row.summary, row.content_html):
        return None
    article = row.article if isinstance(row.article, dict) else {}
    digest = row.content_hash
    if summary != row.summary:
        digest = content_hash(row.title, summary, article.get("text"))
    fingerprint = row.fingerprint
    if fingerprint is not None and fingerprint == content_fingerprint(
        row.title, row.content_html or row.summary
    ):
        fingerprint = content_fingerprint(row.title, content or summary)
    return {"b_id": row.id, "b_summary": summary, "b_content_html": content,
            "b_content_hash": digest, "b_fingerprint": fingerprint, "b_changed_at": now}


def _revision(row: Any) -> dict[str, Any] | None:
    summary = safe_or_none(row.summary)
    if summary == row.summary:
        return None
    return {"b_id": row.id, "b_summary": summary,
            "b_content_hash": content_hash(row.title, summary, row.text)}
