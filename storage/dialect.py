"""Every difference between SQLite and PostgreSQL the store knows of; nothing else branches on it.

SQLite: WAL, foreign keys, a busy timeout, and ``BEGIN IMMEDIATE`` for write transactions (a
deferred transaction that reads then writes fails at once with "database is locked" whatever the
busy timeout). PostgreSQL: ``FOR UPDATE SKIP LOCKED`` to claim rows (SQLAlchemy drops it silently
on SQLite, where the write lock already serializes claims) and advisory locks where two
transactions could both insert the same story.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

BUSY_TIMEOUT_MS = 30_000
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


def for_update(conn: Connection, query: Select[Any]) -> Select[Any]:
    """Lock rows that will be updated but keep their keys: ``FOR NO KEY UPDATE``, which lets
    another transaction's foreign-key check (``FOR KEY SHARE``) through. With ``FOR UPDATE`` a
    poll holding its feed row and another touching an item of that feed deadlock (the second
    update of a row in one transaction re-runs the item's foreign-key check on its feed)."""
    return query.with_for_update(key_share=True) if is_postgres(conn) else query


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
        conn.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT unnest(CAST(:ns AS bigint[])) AS k ORDER BY k) AS s"
            ),
            {"ns": numbers},
        )


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
