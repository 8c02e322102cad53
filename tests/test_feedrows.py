"""A poll's feed-row writes below SQLAlchemy (``storage.feedrows``) store what the Core
statements stored, on SQLite and PostgreSQL: NUL stripped, quotes, backslashes, commas, braces
and the word NULL kept, None as NULL, times as naive UTC to the microsecond, doubles exactly."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, select, update

from storage.feedrows import STATE_COLUMNS, log_polls, read_states, write_states
from storage.feeds import to_state
from storage.records import FeedConfig
from storage.store import Store
from storage.tables import feeds, polls
from tests.dbfixtures import T0

ODD = ['a"b', "c\\d", "e,f", "{g}", "h\x00i", " NULL ", "NULL", "", "ünï", "x\ny\tz", "(1,2)"]
PLUS5 = timezone(timedelta(hours=5, minutes=30))


def state(feed_id: int, text: str, n: int, url: str) -> dict[str, Any]:
    """Every column of a feed's poll state, with odd values where a column allows them."""
    when = (T0 + timedelta(microseconds=n + 1)).astimezone(PLUS5)
    return {
        "feed_id": feed_id, "last_polled": when, "last_status": text, "last_http_status": 304,
        "last_error": text or None, "error_count": n, "interval": 900.0 + n / 7,
        "next_check": when + timedelta(seconds=n), "next_reason": text, "lease_owner": None,
        "lease_until": None if n % 2 else when, "gone": bool(n % 2), "redirect_url": text,
        "redirect_count": n, "link_keys": not n % 2, "last_new_items": 0, "etag": f'W/"{text}"',
        "last_modified": text, "last_document_at": when,
        "last_unconditional": None if n % 3 else T0, "title": text, "url": url,
        "items_per_day": [None, 0.1, 1e-300, float("inf")][n % 4],
    }  # fmt: skip


def core_write(conn: Connection, states: list[dict[str, Any]]) -> None:
    """What ``write_states`` was: an executemany of a Core UPDATE, through the column types."""
    stmt = (update(feeds).where(feeds.c.id == bindparam("feed_id"))
            .values({name: bindparam(f"v_{name}") for name in STATE_COLUMNS}))  # fmt: skip
    conn.execute(stmt, [{"feed_id": s["feed_id"]} | {f"v_{n}": s[n] for n in STATE_COLUMNS}
                        for s in states])  # fmt: skip


def rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    """Rows as the database holds them (no result processing), by id, without the id."""
    found = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
    return [{k: v for k, v in r._mapping.items() if k != "id"} for r in found]


def test_feed_states_are_stored_as_the_core_update_stores_them(store: Store) -> None:
    urls = [f"https://f{i}.example/feed" for i in range(2 * len(ODD))]
    store.sync_feeds([FeedConfig(u) for u in urls], T0)
    ids = {f.url: f.id for f in store.list_feeds()}
    ours = [state(ids[urls[2 * i]], t, i, f"{t}/ours") for i, t in enumerate(ODD)]
    core = [state(ids[urls[2 * i + 1]], t, i, f"{t}/core") for i, t in enumerate(ODD)]
    with store.db.write() as conn:
        write_states(conn, ours)
        core_write(conn, core)
        stored = rows(conn, "feeds")
    for a, b in zip(stored[::2], stored[1::2], strict=True):
        assert a.pop("url").removesuffix("/ours") == b.pop("url").removesuffix("/core")
        assert a.pop("config_url") != b.pop("config_url")  # each its own feed's
        assert a == b


def test_a_feed_met_twice_keeps_its_last_state(store: Store) -> None:
    store.sync_feeds([FeedConfig("https://f.example/feed")], T0)
    [feed] = store.list_feeds()
    with store.db.write() as conn:
        write_states(conn, [state(feed.id, "first", 0, feed.url), state(feed.id, "last", 1,
                                                                         feed.url)])  # fmt: skip
    [after] = store.list_feeds()
    assert (after.last_status, after.error_count, after.gone) == ("last", 1, True)


@pytest.mark.parametrize("text", ODD)
def test_poll_history_rows_are_stored_as_the_core_insert_stores_them(store: Store,
                                                                     text: str) -> None:
    store.sync_feeds([FeedConfig("https://f.example/feed")], T0)
    [feed] = store.list_feeds()
    when = (T0 + timedelta(microseconds=3)).astimezone(PLUS5)
    row = {"feed_id": feed.id, "polled_at": when, "status": text, "http_status": None,
           "new_items": 2, "error": text, "next_check": when, "next_reason": text,
           "warning": None}  # fmt: skip
    with store.db.write() as conn:
        log_polls(conn, [row])
        conn.execute(polls.insert(), [row])
        first, second = rows(conn, "polls")
    assert first == second


def kinds(record: Any) -> list[type]:
    return [type(getattr(record, f.name)) for f in fields(record)]


def test_feed_states_are_read_as_core_rows_make_them(store: Store) -> None:
    """``read_states`` (what a claim returns) equals ``to_state`` over Core's rows: tags,
    times to the microsecond, NULLs, booleans, in the order asked for."""
    urls = [f"https://f{i}.example/feed" for i in range(len(ODD))]
    configs = [FeedConfig(u, tags=("a", 'b"c') if i % 2 else (), title=None if i % 3 else "T")
               for i, u in enumerate(urls)]  # fmt: skip
    store.sync_feeds(configs, T0)
    ids = {f.url: f.id for f in store.list_feeds()}
    with store.db.write() as conn:
        write_states(conn, [state(ids[u], ODD[i], i, u) for i, u in enumerate(urls)])
        conn.execute(update(feeds).where(feeds.c.id == ids[urls[1]]).values(active=False))
    order = sorted(ids.values(), key=lambda fid: (fid * 7) % 11)
    with store.db.write() as conn:
        core = {r.id: to_state(r) for r in conn.execute(select(feeds))}
        ours = read_states(conn, order)
        assert ours == [core[fid] for fid in order]
        assert [kinds(s) for s in ours] == [kinds(core[fid]) for fid in order]  # 1 is not True
        assert read_states(conn, []) == []
