"""Looking after the database: check, backup, vacuum, upgrade (``aggregator db``, issue 15).

Works on a ``Database`` that was *not* migrated when opened: a check must see the schema as it
is. SQLite's online backup API copies a consistent snapshot while the service writes: the copy
runs in one step, inside one read transaction, and in WAL mode readers and writers do not block
each other. PostgreSQL's tool for the same is pg_dump.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text

from storage import maintenance
from storage.dburl import Timeouts
from storage.engine import (
    Database,
    boundary,
    current_heads,
    describe,
    migrate,
    schema_state,
    sqlite_file,
)
from storage.errors import StorageError


@dataclass(frozen=True, slots=True)
class CheckReport:
    facts: tuple[str, ...]  # what was found, one line each
    problems: tuple[str, ...]  # what is wrong; () when healthy


def open_existing(url: str, timeouts: Timeouts | None = None) -> Database:
    """The database, not migrated; a SQLite file that is not there is refused, not created."""
    with boundary("open the database"):
        path = sqlite_file(url)
        if path is not None and not Path(path).is_file():
            raise StorageError(f"no archive at {path} (`aggregator db upgrade` creates one)")
        return Database(url, timeouts)


def is_sqlite(db: Database) -> bool:
    return db.engine.dialect.name == "sqlite"


def check(db: Database) -> CheckReport:
    """The connection, the schema revision against head, and (once a schema exists) SQLite's
    ``integrity_check`` and ``foreign_key_check`` and the archive's own invariants."""
    with boundary("db check"):
        facts = [_server(db)]
        state = schema_state(db)
        current = ", ".join(state.current) or "none (no archive yet)"
        facts.append(f"schema revision {current}; this program's head {', '.join(state.heads)}")
        problems = [f"pending migration {rev}: {doc}" for rev, doc in state.pending]
        problems += [f"schema revision {rev} is newer than this program" for rev in state.unknown]
        if state.current:
            with db.read() as conn:
                problems += maintenance.integrity(conn)
                facts.append(f"size {_mib(database_size(conn))}")
    return CheckReport(tuple(facts), tuple(problems))


def _server(db: Database) -> str:
    with db.read() as conn:
        if is_sqlite(db):
            return f"SQLite {sqlite3.sqlite_version}, file {sqlite_file(db.url)}"
        version, schema = conn.execute(
            text("SELECT current_setting('server_version'), current_schema()")).one()
    return f"PostgreSQL {version} at {describe(db.url)}, schema {schema}"


def database_size(conn: Connection) -> int:
    """Bytes: SQLite's pages in use or free; PostgreSQL's tables, indexes and TOAST in the
    current schema (not the whole database, which other applications may share)."""
    if conn.dialect.name == "sqlite":
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        return int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    return int(conn.execute(text(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')")).scalar_one())


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def backup(db: Database, target: Path) -> int:
    """Copy a SQLite archive to ``target`` (a new file) while others may write; the copy is
    checked (``integrity_check``) before it takes the name. Returns its size in bytes."""
    source = sqlite_file(db.url)
    if source is None:
        raise StorageError("db backup copies SQLite files only")
    if target.exists() or target.is_symlink():
        raise StorageError(f"db backup: {target} exists; give a new file name")
    if not target.parent.is_dir():
        raise StorageError(f"db backup: {target.parent} is not a directory")
    temp = target.parent / f".{target.name}.backup-{os.getpid()}.tmp"
    try:
        with boundary("db backup"):
            size = _copy(db, temp)
            temp.chmod(Path(source).stat().st_mode & 0o777)  # as private as the archive
            temp.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return size


def _copy(db: Database, temp: Path) -> int:
    with db.engine.connect() as conn:
        src = conn.connection.driver_connection
        assert isinstance(src, sqlite3.Connection)
        dst = sqlite3.connect(temp, isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: one step, one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside
            rows = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            if rows != ["ok"]:
                raise StorageError(f"db backup: the copy fails integrity_check: {rows[0]}")
            return _sqlite_size(dst)
        finally:
            dst.close()


def vacuum(db: Database) -> tuple[int, int]:
    """SQLite: VACUUM, ANALYZE, then a WAL checkpoint so the file itself shrinks (holding the
    writers' turn: polls wait meanwhile). PostgreSQL: VACUUM (ANALYZE) of the archive's tables.
    Returns the size before and after, in bytes."""
    with boundary("db vacuum"):
        if is_sqlite(db):
            return _vacuum_sqlite(db)
        return _vacuum_postgres(db)


def _vacuum_sqlite(db: Database) -> tuple[int, int]:
    with db.writer_turn(), db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        before = _sqlite_size(raw)
        raw.execute("VACUUM")  # outside any transaction, as SQLite requires
        raw.execute("ANALYZE")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, _sqlite_size(raw)


def _sqlite_size(raw: sqlite3.Connection) -> int:
    pages = raw.execute("PRAGMA page_count").fetchone()[0]
    return int(pages) * int(raw.execute("PRAGMA page_size").fetchone()[0])


def _vacuum_postgres(db: Database) -> tuple[int, int]:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        before = database_size(conn)
        tables = conn.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema() "
            "ORDER BY tablename")).scalars().all()
        conn.exec_driver_sql("SET statement_timeout = 0")  # a big archive's vacuum runs long
        if tables:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(tables)}")
        after = database_size(conn)
        conn.invalidate()  # its session settings are not the pool's
    return before, after


def upgrade(db: Database) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Run the pending migrations (creating the schema of an empty database); the revisions
    before and after."""
    with boundary("db upgrade"):
        before = tuple(sorted(current_heads(db) or ()))
        migrate(db, create=True)
        return before, tuple(sorted(current_heads(db) or ()))
