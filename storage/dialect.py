"""Every difference between SQLite and PostgreSQL the store knows of; nothing else branches on it.

SQLite: WAL, foreign keys, a busy timeout, and ``BEGIN IMMEDIATE`` for write transactions (a
deferred transaction that reads then writes fails at once with "database is locked" whatever the
busy timeout). PostgreSQL: ``FOR UPDATE SKIP LOCKED`` to claim rows (SQLAlchemy drops it silently
on SQLite, where the write lock already serializes claims) and advisory locks where two
transactions could both insert the same story.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Row,
    Select,
    String,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.types import TypeDecorator

from storage.tables import clean_text, strip_nul, utc_naive

BUSY_TIMEOUT_MS = 30_000
CHUNK = 500  # values per list bound in one statement (SQLite allows 32766 bound parameters)
WRITE_OPTION = "archiver_write"  # execution option that asks for BEGIN IMMEDIATE on SQLite


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite the parent directory is created and pragmas are set."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """The SQLAlchemy recipe: let SQLAlchemy, not pysqlite, emit BEGIN, so we can choose which."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def insert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/update`` (same API on both databases)."""
    if is_postgres(conn):
        return postgresql.insert(table)
    return sqlite.insert(table)


def for_update_skip_locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    if is_postgres(conn):
        return query.with_for_update(skip_locked=True)
    return query


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows of a poll's hot path (items, revisions, sightings): every column but the
    key, cleaned as the column types would clean them (``storage.tables``).

    PostgreSQL: ``COPY`` (half the CPU of psycopg's executemany). SQLite: the driver's
    executemany of tuples (SQLAlchemy's per-row parameter processing was a quarter of the CPU
    of a new feed's write). Times and JSON are written as SQLAlchemy writes them.
    """
    if not rows:
        return
    into, encoders = _bulk_plan(table, conn.dialect)
    tuples = [
        tuple(row[name] if enc is None else enc(row[name]) for name, enc in encoders)
        for row in rows
    ]
    if not is_postgres(conn):
        marks = ", ".join("?" for _ in encoders)
        conn.exec_driver_sql(f"INSERT INTO {into} VALUES ({marks})", tuples)
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {into} FROM STDIN") as copy:
        for values in tuples:
            copy.write_row(values)


Encoder = Callable[[Any], Any] | None


@functools.cache
def _bulk_plan(table: Table, dialect: Dialect) -> tuple[str, list[tuple[str, Encoder]]]:
    """``table (columns)`` and, per column, what makes a Python value the value to send."""
    postgres, quote = dialect.name == "postgresql", dialect.identifier_preparer.quote
    columns = [c for c in table.c if not c.primary_key]
    into = f"{quote(table.name)} ({', '.join(quote(c.name) for c in columns)})"
    return into, [(c.name, _encoder(c.type, postgres)) for c in columns]


def _encoder(column_type: Any, postgres: bool) -> Encoder:
    kind = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
    if isinstance(kind, JSON):
        return _json
    if isinstance(kind, DateTime):
        return _naive_utc if postgres else _sqlite_time
    if isinstance(kind, String):
        return clean_text
    return None


def _json(value: Any) -> str:
    return json.dumps(strip_nul(value))  # None too: SQLAlchemy stores JSON null, not SQL NULL


def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc_naive(value)


def _sqlite_time(value: datetime | None) -> str | None:
    """SQLAlchemy's storage format for a SQLite DATETIME."""
    return None if value is None else utc_naive(value).isoformat(" ", "microseconds")


InList = Callable[[ColumnElement[Any], str], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class ByDialect:
    """A statement built once per database, its lists of values bound as ``in_(column, name)``
    says: an expanding ``IN (...)`` on SQLite; ``= ANY(:array)`` on PostgreSQL, whose query
    text stays the same whatever the length, so psycopg parses and prepares it once (issue 2)."""

    sqlite: Any
    postgres: Any

    def of(self, conn: Connection) -> Any:
        return self.postgres if is_postgres(conn) else self.sqlite


def by_dialect(build: Callable[[InList], Any]) -> ByDialect:
    return ByDialect(build(_expanding_in), build(_any_of))


def _expanding_in(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column.in_(bindparam(name, expanding=True))


def _any_of(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))


def select_in(
    conn: Connection, query: ByDialect, values: Iterable[Any], params: Mapping[str, Any] = {}
) -> list[Row[Any]]:
    """Run ``query`` (a list bound as ``values``) over ``values`` sorted, CHUNK at a time."""
    ordered, stmt = sorted(values), query.of(conn)
    rows: list[Row[Any]] = []
    for start in range(0, len(ordered), CHUNK):
        rows += conn.execute(stmt, {**params, "values": ordered[start : start + CHUNK]}).all()
    return rows


LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT unnest(CAST(CAST(:ns AS text) AS bigint[])) AS k ORDER BY k) AS s"
)


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    """Serialize transactions that may create an item for the same keys (PostgreSQL only).

    Locks are taken in sorted order so two transactions never wait on each other in a cycle.
    On SQLite ``BEGIN IMMEDIATE`` already serializes every writer.
    """
    if not is_postgres(conn):
        return
    numbers = sorted(
        {int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big", signed=True) for k in keys}
    )
    if numbers:  # sent as one array literal: psycopg's list adaptation costs more
        conn.execute(LOCK_KEYS, {"ns": "{" + ",".join(map(str, numbers)) + "}"})


def lock_migrations(conn: Connection) -> None:
    """Two processes opening a fresh PostgreSQL database must not both create the tables."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(7342001)"))


def integrity_errors(conn: Connection) -> list[str]:
    """The database's own consistency check: [] when fine."""
    if not is_postgres(conn):
        rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
        problems = [] if rows == ["ok"] else [f"integrity_check: {r}" for r in rows]
        fk = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        return problems + [f"foreign_key_check: {tuple(r)}" for r in fk]
    conn.execute(text("SELECT 1"))
    return []
