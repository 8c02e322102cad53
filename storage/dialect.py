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
import math
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.types import UserDefinedType

from storage.dburl import Timeouts
from storage.errors import StorageError
from storage.files import file_kind
from storage.sqlitebind import json_each_in

BUSY_TIMEOUT_MS = 30_000
SYNCHRONOUS = "synchronous"  # SQLite URL query: sqlite:///archive.db?synchronous=normal
SYNCHRONOUS_MODES = ("full", "normal")
CHUNK = 500  # values per list bound in one statement (SQLite allows 32766 bound parameters)
WRITE_OPTION = "archiver_write"  # execution option that asks for BEGIN IMMEDIATE on SQLite


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def make_engine(url: str, timeouts: Timeouts | None = None, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; for SQLite the parent directory is created and pragmas are set.

    PostgreSQL gets ``timeouts``: a connect timeout (psycopg's own, covering the whole
    handshake, so a server that accepts TCP and never answers is given up), a statement timeout
    set on each new connection, and TCP keepalives and a TCP user timeout that notice a vanished
    server or network in about a minute rather than the system's two hours (or 15 minutes of
    retransmissions). A server that is up but never answers a query is bounded by the
    statement timeout only where the server itself still runs.

    ``read_only`` (the web view, issue 16): every connection refuses writes, whatever a caller
    tries (SQLite's ``query_only``; PostgreSQL's ``default_transaction_read_only``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        timeouts = timeouts or Timeouts()
        engine = create_engine(url, pool_pre_ping=True, connect_args=_pg_connect_args(
            parsed.query, timeouts))  # fmt: skip
        event.listen(engine, "connect",
                     functools.partial(_on_postgres_connect, timeouts, read_only))
        return engine
    synchronous = sqlite_synchronous(url)
    parsed = parsed.difference_update_query([SYNCHRONOUS])
    if parsed.database and parsed.database != ":memory:":
        _check_sqlite_path(Path(parsed.database).expanduser())
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
    _configure_sqlite(engine, synchronous, read_only)
    return engine


def sqlite_synchronous(url: str) -> str:
    """The ``?synchronous=`` of a SQLite URL: ``full`` (the default) or ``normal``.

    FULL syncs the WAL at every commit, so a committed poll survives a power cut; group commit
    pays that once per batch. NORMAL syncs only at checkpoints: faster, and still safe if the
    process crashes, but the last commits before a power cut or a kernel crash can roll back.
    """
    values = make_url(url).query.get(SYNCHRONOUS, "full")
    value = values[-1] if isinstance(values, tuple) else values
    if value.lower() not in SYNCHRONOUS_MODES:
        raise StorageError(f"storage: database URL {make_url(url).render_as_string()}: "
                           f"synchronous={value} is not one of {', '.join(SYNCHRONOUS_MODES)}")
    return value.lower()


def _pg_connect_args(query: Mapping[str, Any], timeouts: Timeouts) -> dict[str, Any]:
    """libpq options for the timeouts; the URL's own (``?connect_timeout=5``) win."""
    wanted = {
        "connect_timeout": max(1, math.ceil(timeouts.connect)),
        "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
        "tcp_user_timeout": 60_000,  # ms a sent query may stay unacknowledged (a dead network)
    }  # fmt: skip
    # No server-side prepared statements: each execution is planned with its values. psycopg
    # prepares a query run five times, and the server may then keep one generic plan until the
    # next ANALYZE: one made while the archive was nearly empty scans tables whole (a poll's
    # lookups at 20,000 items: 0.1 -> 6 ms each). ``plan_cache_mode = force_custom_plan`` did
    # the same, but also for the foreign-key checks' own cached plans: a quarter of the
    # server's CPU in a first pass went to planning them again for every inserted row.
    return {key: value for key, value in wanted.items() if key not in query} | {
        "prepare_threshold": None}


def _check_sqlite_path(path: Path) -> None:
    """Create the file's folder; refuse a path that is there but is no regular file (SQLite
    would block for ever reading a FIFO, and fail obscurely on a directory)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISREG(mode):
        raise StorageError(f"storage: {path} is {file_kind(mode)}, not a SQLite database file")


def _on_postgres_connect(
    timeouts: Timeouts, read_only: bool, dbapi_conn: Any, _record: Any
) -> None:
    """The statement timeout, in milliseconds (0: none); a read-only view's refusal to write."""
    with dbapi_conn.cursor() as cursor:
        limit = round(timeouts.statement * 1000) if timeouts.statement else 0
        cursor.execute(f"SET statement_timeout = {int(limit)}")
        if read_only:
            cursor.execute("SET default_transaction_read_only = on")
    dbapi_conn.commit()


def no_statement_timeout(conn: Connection) -> None:
    """Lift the statement timeout for this transaction (migrations may run long)."""
    if is_postgres(conn):
        conn.execute(text("SET LOCAL statement_timeout = 0"))


def _configure_sqlite(engine: Engine, synchronous: str, read_only: bool = False) -> None:
    """The SQLAlchemy recipe: let SQLAlchemy, not pysqlite, emit BEGIN, so we can choose which."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")  # see sqlite_synchronous
        if read_only:  # after journal_mode: the file is WAL already, that pragma writes nothing
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def insert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/update`` (same API on both databases)."""
    # Imported here: the PostgreSQL dialect brings asyncio and asyncpg's module (a twentieth of a
    # second) into every SQLite command otherwise; the engine's URL loads the one in use.
    if is_postgres(conn):
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def for_update_skip_locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    if is_postgres(conn):
        return query.with_for_update(skip_locked=True)
    return query


InList = Callable[[ColumnElement[Any], str], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class ByDialect:
    """A statement built once per database, its lists of values bound as ``in_(column, name)``
    says: one parameter whatever the list's length, so the query text stays the same and the
    driver prepares it once (issue 2). SQLite: a JSON array read by ``json_each``; PostgreSQL:
    ``= ANY(:array)``."""

    sqlite: Any
    postgres: Any

    def of(self, conn: Connection) -> Any:
        return self.postgres if is_postgres(conn) else self.sqlite


def by_dialect(build: Callable[[InList], Any]) -> ByDialect:
    return ByDialect(build(json_each_in), build(_any_of))


def _any_of(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    array = IntArray() if isinstance(column.type, Integer) else TextArray()
    return column == any_(bindparam(name, type_=array))


class TextArray(UserDefinedType[list[str]]):
    """A list of strings sent as one array literal (psycopg would adapt it element by element
    in Python), NUL stripped as ``CleanText`` strips it. Cast to ``TEXT[]`` in the query text,
    so the server reads it as a constant array: the planner sees its values."""

    cache_ok = True
    render_bind_cast = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "TEXT[]"

    def bind_processor(self, dialect: Dialect) -> Callable[[list[str] | None], str | None]:
        return _text_array


class IntArray(UserDefinedType[list[int]]):
    """A list of integers sent as one array literal, cast to ``BIGINT[]`` in the query text."""

    cache_ok = True
    render_bind_cast = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "BIGINT[]"

    def bind_processor(self, dialect: Dialect) -> Callable[[list[int] | None], str | None]:
        return int_array


def _text_array(value: list[str] | None) -> str | None:
    if value is None:
        return None
    quoted = (quote_element(v) if '"' in v or "\\" in v or "\x00" in v else v for v in value)
    return '{"' + '","'.join(quoted) + '"}' if value else "{}"


def quote_element(value: str) -> str:
    """A string as an element of an array literal (quoted by the caller), NUL dropped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "")


def int_array(value: list[int] | None) -> str | None:
    return None if value is None else "{" + ",".join(map(str, value)) + "}"


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
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(:ns) AS k ORDER BY k) AS s"
).bindparams(bindparam("ns", type_=IntArray()))


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
    if numbers:
        conn.execute(LOCK_KEYS, {"ns": numbers})


def lock_migrations(conn: Connection) -> None:
    """Two processes opening a fresh PostgreSQL database must not both create the tables."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(7342001)"))


def lock_feed_sync(conn: Connection) -> None:
    """Two instances starting together on one PostgreSQL sync their configs one after the
    other (each would otherwise insert the same new feeds: a unique violation). Released at
    commit; SQLite's ``BEGIN IMMEDIATE`` serializes them already."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(7342002)"))


def integrity_errors(conn: Connection) -> list[str]:
    """The database's own consistency check: [] when fine."""
    if not is_postgres(conn):
        rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
        problems = [] if rows == ["ok"] else [f"integrity_check: {r}" for r in rows]
        fk = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        return problems + [f"foreign_key_check: {tuple(r)}" for r in fk]
    conn.execute(text("SELECT 1"))
    return []
