"""Item rows: create one from a feed entry, refresh it, attach its article. No matching here.

Which entry belongs to which item is ``storage.poll``'s decision; this module only writes what
it is told, and keeps the invariants of a row: ``content_hash`` always describes the current
title, summary, article text and enclosures, ``changed_at`` moves whenever the exported item
would change, and every content change goes through ``storage.revisions``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, select, update

from storage import captures, revisions, searchindex
from storage.dialect import lock_keys
from storage.identity import content_fingerprint, content_hash, enclosures_from, normalize_url
from storage.records import ARTICLE_FAILED, ARTICLE_OK, Article, ArticleResult, Enclosure, Entry
from storage.tables import captures as captures_t
from storage.tables import items, sightings, strip_nul

BY_ID = select(items).where(items.c.id == bindparam("id"))
ARTICLE_OF = select(items.c.article).where(items.c.id == bindparam("id"))

def offset_minutes(value: datetime | None) -> int | None:
    offset = None if value is None else value.utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)


def with_offset(value: datetime | None, minutes: int | None) -> datetime | None:
    """A stored UTC time given back in the source's own offset."""
    if value is None:
        return None
    return value.astimezone(timezone(timedelta(minutes=minutes or 0)))


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def article_json(article: Article) -> dict[str, Any]:
    """The export's shape of an article (also how it is stored)."""
    return {
        "title": article.title, "text": article.text, "html": article.html,
        "authors": list(article.authors), "published": iso(article.published),
        "modified": iso(article.modified), "language": article.language,
        "canonical_url": article.canonical_url, "image": article.image,
        "dateline": article.dateline, "sources": dict(article.sources),
        "extractor": article.extractor,
        **({"published_date": article.published_date.isoformat()}
           if article.published_date else {}),
    }  # fmt: skip


def article_text(article: dict[str, Any] | None) -> str | None:
    return None if not article else article.get("text")


def enclosures_json(enclosures: tuple[Enclosure, ...]) -> list[dict[str, Any]] | None:
    """The export's (and the column's) shape; None when there are none, as in rows stored
    before enclosures were archived."""
    if not enclosures:
        return None
    return [{"url": e.url, "type": e.type, "length": e.length, "duration": e.duration}
            for e in enclosures]  # fmt: skip


# The columns an entry sets (``entry_values``): what a poll compares a known entry with.
ENTRY_COLUMNS = ("guid", "url", "title", "summary", "content_html", "authors", "published",
                 "published_offset", "updated", "updated_offset", "enclosures")  # fmt: skip


_STORED = attrgetter(*ENTRY_COLUMNS)


def entry_values(entry: Entry) -> dict[str, Any]:
    """The columns an entry sets, in ``ENTRY_COLUMNS``' order."""
    return {
        "guid": entry.guid, "url": entry.url, "title": entry.title, "summary": entry.summary,
        "content_html": entry.content_html, "authors": list(entry.authors),
        "published": entry.published, "published_offset": offset_minutes(entry.published),
        "updated": entry.updated, "updated_offset": offset_minutes(entry.updated),
        "enclosures": enclosures_json(entry.enclosures),
    }  # fmt: skip


def fingerprint(entry: Entry) -> str | None:
    return content_fingerprint(entry.title, entry.content_html or entry.summary)


def new_row(
    feed_id: int,
    uid: str,
    entry: Entry,
    now: datetime,
    article_status: str,
    identity: tuple[str | None, str | None] | None = None,
) -> dict[str, Any]:
    """The items row for a story first seen as ``entry``; ``identity`` is its canonical URL and
    fingerprint when the caller computed them already."""
    canonical, print_ = identity or (normalize_url(entry.url), fingerprint(entry))
    return entry_values(entry) | {
        "uid": uid, "feed_id": feed_id, "canonical_url": canonical, "page_canonical_url": None,
        "fingerprint": print_, "first_seen": now, "last_seen": now, "changed_at": now,
        "content_hash": content_hash(entry.title, entry.summary, None, entry.enclosures),
        "article_status": article_status, "article_attempts": 0, "article": None,
        "article_error": None, "article_next_try": None, "fetched_at": None, "final_url": None,
        "extractor": None,
    }  # fmt: skip


def first_revisions(ids: list[int], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The revisions rows of new items: their first version, as created."""
    return [
        {"item_id": item_id, "seq": 1, "recorded_at": row["first_seen"], "title": row["title"],
         "summary": row["summary"], "text": None, "content_hash": row["content_hash"],
         "diff": None, "enclosures": row["enclosures"]}
        for item_id, row in zip(ids, rows, strict=True)
    ]  # fmt: skip


def load(conn: Connection, item_id: int) -> Row[Any]:
    return conn.execute(BY_ID, {"id": item_id}).one()


def changes(row: Row[Any], entry: Entry) -> dict[str, Any]:
    """The columns an item's own feed's newer entry would change (``refresh`` writes them).

    Most known entries did not change: the stored values equal to the entry's as they are (no
    NUL to strip, the same instants) mean no change, tested at once before the column-by-column
    comparison that also forgives a NUL the row dropped or an instant in another offset."""
    values = entry_values(entry)
    if _STORED(row) == tuple(values.values()):
        return {}
    return {k: v for k, v in values.items() if _differs(getattr(row, k), v)}


def refresh(conn: Connection, row: Row[Any], entry: Entry, now: datetime,
            changed: dict[str, Any]) -> bool:  # fmt: skip
    """Write ``changed`` (``changes(row, entry)``, not empty) to the item and record the
    revision; True when one was recorded. ``row`` needs its id and the columns an entry sets
    (``ENTRY_COLUMNS``), not the article (read here)."""
    article = conn.execute(ARTICLE_OF, {"id": row.id}).scalar()  # not in the poll's rows
    text = article_text(article)
    digest = content_hash(entry.title, entry.summary, text, entry.enclosures)
    values = changed | {"last_seen": now, "changed_at": now, "content_hash": digest}
    conn.execute(update(items).where(items.c.id == row.id).values(**values))
    searchindex.write(conn, [searchindex.doc(row.id, entry.title, entry.summary, article)])
    version = revisions.Version(entry.title, entry.summary, text, digest,
                                enclosures_json(entry.enclosures))  # fmt: skip
    return revisions.record(conn, row.id, version, now)


def _differs(stored: Any, new: Any) -> bool:
    new = strip_nul(new)  # the row holds it without NUL
    if isinstance(new, datetime) and stored is not None:
        return bool(stored != new.astimezone(UTC))
    return bool(stored != new)


def attach_article(
    conn: Connection, item_id: int, feed_id: int | None, result: ArticleResult, now: datetime
) -> bool:
    """Store an article outcome on an item; True when it made a new revision."""
    if result.capture is not None:
        captures.add(conn, result.capture, item_id, feed_id)
    row = load(conn, item_id)
    if result.article is None:
        conn.execute(
            update(items).where(items.c.id == item_id).values(
                article_status=ARTICLE_FAILED, changed_at=now,
                article_error=result.error or "extract: no article and no error given",
                article_attempts=row.article_attempts + 1, article_next_try=result.next_try,
            )
        )  # fmt: skip
        return False
    return _store_article(conn, row, result, now)


def _item_with_canonical(conn: Connection, canonical: str, other_than: int) -> int | None:
    query = (select(items.c.id).where(items.c.canonical_url == canonical, items.c.id != other_than)
             .order_by(items.c.id).limit(1))  # fmt: skip
    found: int | None = conn.execute(query).scalar()
    return found


def _share_a_feed(conn: Connection, one: int, other: int) -> bool:
    """A feed that lists both as entries of its own says they are two stories."""
    feeds_of = select(sightings.c.feed_id).where(sightings.c.item_id == one)
    both = select(sightings.c.id).where(sightings.c.item_id == other,
                                        sightings.c.feed_id.in_(feeds_of)).limit(1)  # fmt: skip
    return conn.execute(both).first() is not None


def fold_into(conn: Connection, item_id: int, twin: int, now: datetime) -> None:
    """One story, one item (issue 5): an item found to be ``twin`` (the same canonical URL, known
    only once its page was read) gives it its sightings and captures and goes; its own
    revisions go with it, the twin's history stays whole."""
    for table in (sightings, captures_t):
        conn.execute(update(table).where(table.c.item_id == item_id).values(item_id=twin))
    conn.execute(delete(items).where(items.c.id == item_id))
    conn.execute(update(items).where(items.c.id == twin).values(changed_at=now))


def _store_article(conn: Connection, row: Row[Any], result: ArticleResult, now: datetime) -> bool:
    assert result.article is not None
    art = article_json(result.article)
    same = row.article == art and row.page_canonical_url == result.article.canonical_url
    if result.capture is None and same and row.article_status == ARTICLE_OK:
        return False  # a re-extraction that found the same article: nothing to write
    digest = content_hash(row.title, row.summary, art["text"], enclosures_from(row.enclosures))
    values: dict[str, Any] = {
        "article": art, "article_status": ARTICLE_OK, "article_error": None,
        "article_attempts": row.article_attempts + 1, "article_next_try": None,
        "extractor": result.article.extractor, "content_hash": digest, "changed_at": now,
    }  # fmt: skip
    canonical = normalize_url(result.article.canonical_url)
    if canonical:
        lock_keys(conn, [canonical])  # two pages of one story, applied at once on PostgreSQL
        twin = _item_with_canonical(conn, canonical, row.id)
        if twin is not None and not _share_a_feed(conn, row.id, twin):
            # the page says this is a story the archive already holds
            fold_into(conn, row.id, twin, now)
            if load(conn, twin).article_status == ARTICLE_OK:
                return False
            return _store_article(conn, load(conn, twin), result, now)
        values["canonical_url"] = canonical
    values["page_canonical_url"] = result.article.canonical_url
    if result.capture is not None:
        values |= {"fetched_at": result.capture.fetched_at, "final_url": result.capture.final_url}
    conn.execute(update(items).where(items.c.id == row.id).values(**values))
    searchindex.write(conn, [searchindex.doc(row.id, row.title, row.summary, art)])
    version = revisions.Version(row.title, row.summary, art["text"], digest, row.enclosures)
    return revisions.record(conn, row.id, version, now)
