"""The feed rows a poll reads and writes in bulk, below SQLAlchemy's per-row processing, as
``storage.bulk`` writes items: the claimed feeds' states read, each poll's new state and history
row written, values converted in Python as the column types would convert them
(``storage.tables``), one driver call per batch.

SQLite: the driver's executemany of tuples. PostgreSQL: the states in one
``UPDATE ... FROM unnest(arrays)`` (one statement to parse and plan, not one per feed), the
history rows by ``COPY``. An unchanged pass reads and writes a thousand of each: through Core,
their parameter and result processing was the bulk of the writer's CPU.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from storage.bulk import insert_rows, text_array, value_array
from storage.dialect import int_array, is_postgres
from storage.records import FeedState
from storage.tables import clean_text, feeds, polls, sqlite_time, sqlite_when, utc_naive

# What a poll sets on its feed row, every column every time.
STATE_COLUMNS = (
    "last_polled", "last_status", "last_http_status", "last_error", "error_count", "interval",
    "next_check", "next_reason", "lease_owner", "lease_until", "gone", "redirect_url",
    "redirect_count", "link_keys", "last_new_items", "etag", "last_modified",
    "last_document_at", "last_unconditional", "title", "url", "items_per_day",
)  # fmt: skip


def write_states(conn: Connection, states: Sequence[Mapping[str, Any]]) -> None:
    """Set feed rows' poll state: mappings of ``feed_id`` and every name in ``STATE_COLUMNS``.
    A feed met twice takes its last state, as one UPDATE after the other would leave it."""
    if not states:
        return
    plan = _plan(conn.dialect)
    if not is_postgres(conn):
        conn.exec_driver_sql(plan.sql, [(*plan.values(s), s["feed_id"]) for s in states])
        return
    last = {s["feed_id"]: s for s in states}  # one row per feed: UPDATE ... FROM takes one
    columns = zip(*((s["feed_id"], *plan.values(s)) for s in last.values()), strict=True)
    params = {f"c{i}": plan.arrays[i](values) for i, values in enumerate(columns)}
    conn.exec_driver_sql(plan.sql, params)


def read_states(conn: Connection, ids: Sequence[int]) -> list[FeedState]:
    """The feeds of ``ids`` (claimed: they exist), in that order, as ``feeds.to_state`` makes
    them of Core's rows: times aware UTC, booleans, tags a tuple."""
    if not ids:
        return []
    postgres = is_postgres(conn)
    if postgres:
        found = conn.exec_driver_sql(_READ_PG, {"ids": int_array(list(ids))})
    else:
        found = conn.exec_driver_sql(_READ_SQLITE, (json.dumps(list(ids)),))
    when: Callable[[Any], datetime] = _pg_when if postgres else sqlite_when

    def maybe(value: Any) -> datetime | None:
        return None if value is None else when(value)

    states = {}
    for (fid, url, title, tags, interval, next_check, next_reason, error_count, etag, modified,
         polled, status, http_status, error, new_items, unconditional, gone, redirect_url,
         redirects, link_keys, active, config_url, rate) in found:  # fmt: skip
        if isinstance(tags, str):  # SQLite's JSON is text; psycopg parses it
            tags = json.loads(tags)
        states[fid] = FeedState(
            id=fid, url=url, title=title, tags=tuple(tags or ()), interval=interval,
            next_check=when(next_check), next_reason=next_reason, error_count=error_count,
            etag=etag, last_modified=modified, last_polled=maybe(polled), last_status=status,
            last_http_status=http_status, last_error=error, last_new_items=new_items,
            last_unconditional=maybe(unconditional), gone=bool(gone), redirect_url=redirect_url,
            redirect_count=redirects, link_keys=bool(link_keys), active=bool(active),
            config_url=config_url, items_per_day=rate,
        )  # fmt: skip
    return [states[fid] for fid in ids]


_READ = ", ".join(f'"{name}"' for name in (
    "id", "url", "title", "tags", "interval", "next_check", "next_reason", "error_count", "etag",
    "last_modified", "last_polled", "last_status", "last_http_status", "last_error",
    "last_new_items", "last_unconditional", "gone", "redirect_url", "redirect_count",
    "link_keys", "active", "config_url", "items_per_day"))  # fmt: skip
_READ_SQLITE = f"SELECT {_READ} FROM feeds WHERE id IN (SELECT value FROM json_each(?))"
_READ_PG = f"SELECT {_READ} FROM feeds WHERE id = ANY(CAST(%(ids)s AS BIGINT[]))"


def _pg_when(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def log_polls(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append to feeds' poll history: mappings of every column of ``polls`` but ``id``."""
    insert_rows(conn, polls, rows)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How ``write_states`` sends states to one database."""

    sql: str
    cleaners: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, cleaning) of a column
    arrays: tuple[Callable[[Sequence[Any]], str], ...]  # PostgreSQL: each array's literal, id first

    def values(self, state: Mapping[str, Any]) -> list[Any]:
        values = [state[name] for name in STATE_COLUMNS]
        for i, clean in self.cleaners:
            value = values[i]
            if value is not None:
                values[i] = clean(value)
        return values


@functools.cache
def _plan(dialect: Dialect) -> _Plan:
    quote = dialect.identifier_preparer.quote
    columns = [feeds.c[name] for name in STATE_COLUMNS]
    kinds = [c.type.impl if isinstance(c.type, TypeDecorator) else c.type for c in columns]
    postgres = dialect.name == "postgresql"
    timed: Callable[[datetime], Any] = utc_naive if postgres else sqlite_time
    cleaners = tuple((i, timed if isinstance(k, DateTime) else clean_text)
                     for i, k in enumerate(kinds) if isinstance(k, DateTime | String))  # fmt: skip
    if not postgres:
        sets = ", ".join(f"{quote(c.name)} = ?" for c in columns)
        return _Plan(f"UPDATE feeds SET {sets} WHERE id = ?", cleaners, ())
    arrays = ", ".join(f"CAST(%(c{i})s AS {c.type.compile(dialect=dialect)}[])"
                       for i, c in enumerate([feeds.c.id, *columns]))  # fmt: skip
    names = ", ".join(quote(c.name) for c in columns)
    sets = ", ".join(f"{quote(c.name)} = v.{quote(c.name)}" for c in columns)
    sql = f"UPDATE feeds SET {sets} FROM unnest({arrays}) AS v(id, {names}) WHERE feeds.id = v.id"
    literal = [text_array if isinstance(k, String) else value_array for k in kinds]
    return _Plan(sql, cleaners, (value_array, *literal))
