"""An item's history: one row per version of its title, summary, article text and enclosures,
capped.

The cap (so that a counter in the text cannot fill the archive): the first ``FREE_REVISIONS``
versions are all kept; after that at most one per ``MIN_GAP``; never more than
``MAX_REVISIONS`` per item. A version refused by the cap is not lost for good: the item row
always holds the latest content, and the next version the cap admits is compared (and diffed)
against the last one stored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from storage.tables import revisions

FREE_REVISIONS = 5
MAX_REVISIONS = 20
MIN_GAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Version:
    title: str | None
    summary: str | None
    text: str | None
    content_hash: str
    enclosures: list[dict[str, Any]] | None = None  # ``items.enclosures_json``'s shape


def text_diff(old: str | None, new: str | None) -> str | None:
    """A compact line diff (no context lines) of ``new`` against ``old``; None when equal."""
    if (old or "") == (new or ""):
        return None
    lines = difflib.unified_diff(
        (old or "").splitlines(), (new or "").splitlines(), "previous", "this", n=0, lineterm=""
    )
    return "\n".join(lines)


def admitted(count: int, last_at: datetime | None, now: datetime) -> bool:
    """Whether the cap lets item with ``count`` revisions (the last at ``last_at``) get another."""
    if count >= MAX_REVISIONS:
        return False
    if count < FREE_REVISIONS or last_at is None:
        return True
    return now - last_at >= MIN_GAP


def record(conn: Connection, item_id: int, version: Version, now: datetime) -> bool:
    """Store ``version`` if it differs from the last stored one and the cap admits it."""
    last = conn.execute(
        select(revisions)
        .where(revisions.c.item_id == item_id)
        .order_by(revisions.c.seq.desc())
        .limit(1)
    ).first()
    if last is not None and last.content_hash == version.content_hash:
        return False
    if last is not None and _completes(last, version):
        # the article arrived for an item that had none: the same version, now complete
        conn.execute(
            update(revisions)
            .where(revisions.c.id == last.id)
            .values(text=version.text, content_hash=version.content_hash)
        )
        return False
    seq = 0 if last is None else last.seq
    if not admitted(seq, None if last is None else last.recorded_at, now):
        return False
    conn.execute(
        revisions.insert().values(
            item_id=item_id, seq=seq + 1, recorded_at=now, title=version.title,
            summary=version.summary, text=version.text, content_hash=version.content_hash,
            enclosures=version.enclosures,
            diff=None if last is None else text_diff(last.text, version.text),
        )
    )  # fmt: skip
    return True


def _completes(last: Any, new: Version) -> bool:
    same = (last.title, last.summary, last.enclosures) == (new.title, new.summary, new.enclosures)
    return last.text is None and new.text is not None and same
