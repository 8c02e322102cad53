"""Raw HTTP bodies kept for provenance and re-extraction: zstd-compressed, one blob per sha256.

A capture row is metadata (what was asked, where it ended, status, headers, when); its body is
a blob shared by every capture with the same bytes, so a feed that sends the same document
again costs one row, not another copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import zstandard
from sqlalchemy import Connection, func, select

from storage.dialect import by_dialect, insert, select_in
from storage.identity import sha256_bytes
from storage.records import ARTICLE_OK, Capture
from storage.tables import blobs, captures, feeds, items, sightings

CODEC = "zstd"
# Level 3: a 16 KB feed document 4.19x smaller in 0.04 ms, where level 6 took 0.17 ms for
# 4.29x (a tenth of a new feed's write); a 2.7 KB page 2.64x against 2.68x.
LEVEL = 3
KNOWN_BLOBS = by_dialect(lambda in_: select(blobs.c.sha256).where(in_(blobs.c.sha256, "values")))

Owned = tuple[Capture, int | None, int | None]  # a capture, its item id and its feed id


def add(conn: Connection, cap: Capture, item_id: int | None, feed_id: int | None) -> None:
    """Store one capture; storing the same response twice is a no-op."""
    add_many(conn, [(cap, item_id, feed_id)])


def add_many(conn: Connection, caps: Sequence[Owned]) -> None:
    """Store captures in three statements (a batch of polls' feed documents at once); a body
    already stored is not compressed again, and a capture stored already is skipped."""
    if not caps:
        return
    digests = [sha256_bytes(cap.body) for cap, _, _ in caps]
    bodies = dict(zip(digests, (cap.body for cap, _, _ in caps), strict=True))
    known = {row.sha256 for row in select_in(conn, KNOWN_BLOBS, bodies)}
    packer = zstandard.ZstdCompressor(level=LEVEL)
    new = []
    for digest, body in bodies.items():
        if digest not in known:
            packed = packer.compress(body)
            new.append({"sha256": digest, "codec": CODEC, "body": packed,
                        "raw_size": len(body), "stored_size": len(packed)})  # fmt: skip
    if new:
        conn.execute(insert(conn, blobs).on_conflict_do_nothing(), new)
    rows = [
        {"kind": cap.kind, "url": cap.url, "final_url": cap.final_url, "status": cap.status,
         "headers": [list(h) for h in cap.headers], "fetched_at": cap.fetched_at,
         "blob_sha256": digest, "item_id": item_id, "feed_id": feed_id}
        for (cap, item_id, feed_id), digest in zip(caps, digests, strict=True)
    ]  # fmt: skip
    conn.execute(insert(conn, captures).on_conflict_do_nothing(), rows)


def unpack(codec: str, body: bytes) -> bytes:
    if codec != CODEC:
        raise ValueError(f"unknown capture codec {codec!r}")
    return zstandard.ZstdDecompressor().decompress(body)


def to_capture(m: Any) -> Capture:
    return Capture(
        kind=m["kind"], url=m["url"], final_url=m["final_url"], status=m["status"],
        headers=tuple((str(k), str(v)) for k, v in m["headers"]), fetched_at=m["fetched_at"],
        body=unpack(m["codec"], m["body"]),
    )  # fmt: skip


def page_captures(
    conn: Connection, feed_url: str | None, since: datetime | None, after_id: int, limit: int
) -> Iterator[tuple[int, int, Capture]]:
    """(capture id, item id, capture) of article pages, by capture id, one page of results."""
    query = (
        select(captures, blobs.c.codec, blobs.c.body)
        .join(blobs, blobs.c.sha256 == captures.c.blob_sha256)
        .where(captures.c.kind == "page", captures.c.item_id.is_not(None))
        .where(captures.c.id > after_id)
        .order_by(captures.c.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(captures.c.fetched_at >= since)
    if feed_url is not None:
        query = query.where(captures.c.item_id.in_(_in_feed(feed_url)))
    for row in conn.execute(query):
        m = row._mapping
        yield m["id"], m["item_id"], to_capture(m)


def _in_feed(feed_url: str) -> Any:
    return (select(sightings.c.item_id).join(feeds, feeds.c.id == sightings.c.feed_id)
            .where(feeds.c.url == feed_url))  # fmt: skip


def without_page(conn: Connection, feed_url: str | None, since: datetime | None) -> int:
    """Items holding an extracted article but no archived page (restored from an export, whose
    format carries no raw pages): re-extraction cannot re-run on them."""
    page = select(captures.c.id).where(captures.c.item_id == items.c.id,
                                       captures.c.kind == "page")  # fmt: skip
    query = (select(func.count()).select_from(items)
             .where(items.c.article_status == ARTICLE_OK, ~page.exists()))  # fmt: skip
    if since is not None:
        query = query.where(items.c.fetched_at >= since)
    if feed_url is not None:
        query = query.where(items.c.id.in_(_in_feed(feed_url)))
    return int(conn.execute(query).scalar_one())


def drop_orphan_blobs(conn: Connection) -> int:
    used = select(captures.c.blob_sha256)
    result = conn.execute(blobs.delete().where(blobs.c.sha256.not_in(used)))
    return int(result.rowcount or 0)
