"""Bulk rows of a poll's hot path (items, revisions, sightings), as each database takes them
best, below SQLAlchemy's per-row parameter processing: cleaned in Python as the column types
would clean them (``storage.tables``), then SQLite's executemany of tuples, or on PostgreSQL
``COPY`` (rows whose ids nobody reads) or one ``INSERT ... SELECT FROM unnest`` (rows whose
ids come back).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, String, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from storage.dialect import by_dialect, is_postgres, quote_element, select_in
from storage.tables import sqlite_time, strip_nul, utc_naive


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
                keyed: bool = False) -> None:  # fmt: skip
    """Insert many rows of a poll's hot path (items, revisions, sightings): every column but the
    key (``keyed``: the key too, given by ``reserve_ids``), cleaned as the column types would
    clean them (``storage.tables``).

    PostgreSQL: ``COPY`` (half the CPU of psycopg's executemany). SQLite: the driver's
    executemany of tuples (SQLAlchemy's per-row parameter processing was a quarter of the CPU
    of a new feed's write). Times and JSON are written as SQLAlchemy writes them.
    """
    if not rows:
        return
    bulk = _bulk_plan(table, conn.dialect, keyed)
    values = bulk.values(rows)
    if not is_postgres(conn):
        conn.exec_driver_sql(f"INSERT INTO {bulk.into} VALUES ({bulk.marks})", values)
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {bulk.into} FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)


@dataclass(frozen=True, slots=True)
class _Bulk:
    """How ``insert_rows`` sends one table's rows to one database."""

    into: str  # table (columns)
    marks: str  # one placeholder per column
    get: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    texts: tuple[int, ...]  # positions of the columns of each kind
    times: tuple[int, ...]
    jsons: tuple[int, ...]
    time: Callable[[datetime], Any]
    unnest: str  # PostgreSQL: INSERT INTO table (columns) SELECT * FROM unnest(array, ...)
    arrays: tuple[Callable[[Sequence[Any]], str], ...]  # each column's array literal

    def values(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Rows as lists of column values, cleaned; a poll's rows share their few times."""
        times: dict[datetime, Any] = {}
        out = []
        for row in rows:
            values = list(self.get(row))
            for i in self.texts:
                text = values[i]
                if text is not None and "\x00" in text:
                    values[i] = text.replace("\x00", "")
            for i in self.times:
                when = values[i]
                if when is not None:
                    found = times.get(when)
                    values[i] = times[when] = self.time(when) if found is None else found
            for i in self.jsons:  # None too: SQLAlchemy stores JSON null, not SQL NULL
                data = values[i]
                if data is None or data == []:  # the usual ones, without the encoder
                    values[i] = "null" if data is None else "[]"
                else:
                    values[i] = json.dumps(strip_nul(data))
            out.append(tuple(values))
        return out


@functools.cache
def _bulk_plan(table: Table, dialect: Dialect, keyed: bool = False) -> _Bulk:
    quote = dialect.identifier_preparer.quote
    columns = [c for c in table.c if keyed or not c.primary_key]
    kinds = [c.type.impl if isinstance(c.type, TypeDecorator) else c.type for c in columns]
    into = f"{quote(table.name)} ({', '.join(quote(c.name) for c in columns)})"
    arrays = ", ".join(f"CAST(%(c{i})s AS {c.type.compile(dialect=dialect)}[])"
                       for i, c in enumerate(columns))  # fmt: skip
    return _Bulk(
        into=into,
        marks=", ".join("?" for _ in columns),
        get=operator.itemgetter(*(c.name for c in columns)),
        texts=tuple(i for i, k in enumerate(kinds) if isinstance(k, String)),
        times=tuple(i for i, k in enumerate(kinds) if isinstance(k, DateTime)),
        jsons=tuple(i for i, k in enumerate(kinds) if isinstance(k, JSON)),
        time=utc_naive if dialect.name == "postgresql" else sqlite_time,
        unnest=f"INSERT INTO {into} SELECT * FROM unnest({arrays})",
        arrays=tuple(text_array if isinstance(k, String | JSON) else value_array for k in kinds),
    )


def insert_ids(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
               key: str) -> dict[Any, int]:  # fmt: skip
    """``insert_rows``, and the new rows' ids by their ``key`` (a unique column).

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays) RETURNING``, one round trip where
    ``COPY`` and a read of the ids by key took three (a poll's new items: a tenth of the
    writer's waits). SQLite: the insert, then the read.
    """
    if not rows:
        return {}
    if not is_postgres(conn):
        insert_rows(conn, table, rows)
        found: Sequence[Any] = select_in(conn, _ids_by(table, key), [row[key] for row in rows])
    else:
        bulk = _bulk_plan(table, conn.dialect)
        columns = zip(*bulk.values(rows), strict=True)
        params = {f"c{i}": bulk.arrays[i](values) for i, values in enumerate(columns)}
        quote = conn.dialect.identifier_preparer.quote
        sql = f"{bulk.unnest} RETURNING {quote('id')}, {quote(key)}"
        found = conn.exec_driver_sql(sql, params).all()
    return {row[1]: int(row[0]) for row in found}


def reserve_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` new ids of ``table`` (its ``id`` column's sequence; PostgreSQL), ascending: rows
    inserted later with them (``insert_rows(keyed=True)``) need no read of their ids."""
    if count <= 0:
        return []
    sql = "SELECT nextval(pg_get_serial_sequence(%(t)s, 'id')) FROM generate_series(1, %(n)s)"
    return sorted(int(i) for (i,) in conn.exec_driver_sql(sql, {"t": table.name, "n": count}))


@functools.cache
def _ids_by(table: Table, key: str) -> Any:
    return by_dialect(lambda in_: table.select().with_only_columns(
        table.c.id, table.c[key]).where(in_(table.c[key], "values")))  # fmt: skip


# Array literals, one per column, for ``unnest``: each element quoted (a string may hold any
# character but NUL) or NULL.
def text_array(values: Sequence[str | None]) -> str:
    return "{" + ",".join("NULL" if v is None else f'"{quote_element(v)}"' for v in values) + "}"


def value_array(values: Sequence[Any]) -> str:
    """Integers, doubles (``str`` gives back the same one; PostgreSQL reads ``inf``), booleans,
    naive times: their text needs no escape."""
    return "{" + ",".join("NULL" if v is None else f'"{_text(v)}"' for v in values) + "}"


def _text(value: Any) -> str:
    return ("t" if value else "f") if isinstance(value, bool) else str(value)
