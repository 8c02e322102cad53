"""Bulk rows of a poll's hot path (items, revisions, sightings), as each database takes them
best, below SQLAlchemy's per-row parameter processing: cleaned in Python as the column types
would clean them (``storage.tables``), then SQLite's executemany of tuples, or on PostgreSQL
``COPY``. New items come with ids reserved beforehand (``reserve_ids``): nothing reads them back.
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

from storage.dialect import is_postgres, quote_element
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
    return _Bulk(
        into=into,
        marks=", ".join("?" for _ in columns),
        get=operator.itemgetter(*(c.name for c in columns)),
        texts=tuple(i for i, k in enumerate(kinds) if isinstance(k, String)),
        times=tuple(i for i, k in enumerate(kinds) if isinstance(k, DateTime)),
        jsons=tuple(i for i, k in enumerate(kinds) if isinstance(k, JSON)),
        time=utc_naive if dialect.name == "postgresql" else sqlite_time,
    )


def reserve_ids(conn: Connection, table: Table, count: int, *, above: int = 0) -> list[int]:
    """``count`` new ids of ``table``, ascending: rows inserted later with them
    (``insert_rows(keyed=True)``) need no read of their ids. PostgreSQL: from the ``id``
    column's sequence. SQLite: the next after the table's largest id and ``above`` (the ids
    reserved earlier in the transaction), as SQLite numbers new rows itself; the write
    transaction (``BEGIN IMMEDIATE``) keeps every other writer out until they are inserted."""
    if count <= 0:
        return []
    if not is_postgres(conn):
        top = conn.exec_driver_sql(f"SELECT max(id) FROM {table.name}").scalar()
        start = max(int(top or 0), above) + 1
        return list(range(start, start + count))
    sql = "SELECT nextval(pg_get_serial_sequence(%(t)s, 'id')) FROM generate_series(1, %(n)s)"
    return sorted(int(i) for (i,) in conn.exec_driver_sql(sql, {"t": table.name, "n": count}))


# Array literals, one per column, for ``unnest`` (``storage.feedrows``, item rates): each element
# quoted (a string may hold any character but NUL) or NULL.
def text_array(values: Sequence[str | None]) -> str:
    return "{" + ",".join("NULL" if v is None else f'"{quote_element(v)}"' for v in values) + "}"


def value_array(values: Sequence[Any]) -> str:
    """Integers, doubles (``str`` gives back the same one; PostgreSQL reads ``inf``), booleans,
    naive times: their text needs no escape."""
    return "{" + ",".join("NULL" if v is None else f'"{_text(v)}"' for v in values) + "}"


def _text(value: Any) -> str:
    return ("t" if value else "f") if isinstance(value, bool) else str(value)
