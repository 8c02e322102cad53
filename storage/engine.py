"""The one module that owns the engine, transactions, migrations and the driver-error boundary.

It runs no query of its own beyond the migration check: the other storage modules take the
``Connection`` it hands out. Every driver error is turned into ``StorageError`` here, once.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from storage.dbfile import FileWatch
from storage.dburl import DatabaseURLError, Timeouts, check_database_url
from storage.dialect import WRITE_OPTION, lock_migrations, make_engine, no_statement_timeout
from storage.errors import StorageError
from storage.turn import WriteTurn

if TYPE_CHECKING:
    from alembic.config import Config

P = ParamSpec("P")
T = TypeVar("T")


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return str(Path(parsed.database).expanduser())


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def describe_or_not(url: str) -> str:
    """``describe`` for a URL that may not even parse (the Database refuses it then)."""
    try:
        return describe(url)
    except Exception:  # any parse failure: the URL is refused with its reason just after
        return "database"


def require_sqlite_file(url: str) -> None:
    """A read-only command's check: the SQLite archive must exist already (issue 13)."""
    try:
        path = sqlite_file(url)
    except Exception:  # a URL that does not parse: Database names the problem just after
        return
    if path is not None and not Path(path).exists():
        raise StorageError(f"no archive at {path} yet: `aggregator poll` creates it")


@contextmanager
def boundary(what: str) -> Iterator[None]:
    """Turn a driver error into one StorageError naming the operation; ours pass through."""
    try:
        yield
    except StorageError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"{what} failed: {detail}") from exc


def guarded(func: Callable[P, T]) -> Callable[P, T]:
    """Decorator form of ``boundary`` for Store methods (named after the method)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with boundary(func.__name__):
            return func(*args, **kwargs)

    return wrapper


def guarded_iter(func: Callable[P, Iterator[T]]) -> Callable[P, Iterator[T]]:
    """``guarded`` for generators: the boundary must hold while the caller iterates."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        with boundary(func.__name__):
            yield from func(*args, **kwargs)

    return wrapper


class Database:
    """An engine plus the two kinds of transaction the store uses."""

    def __init__(
        self, url: str, timeouts: Timeouts | None = None, *, read_only: bool = False
    ) -> None:
        try:
            url = check_database_url(url)
        except DatabaseURLError as exc:
            raise StorageError(f"storage: {exc}") from None
        self.url = url
        self.read_only = read_only
        self.engine: Engine = make_engine(url, timeouts, read_only=read_only)
        # SQLite files: writers of every process take turns (None: the database arbitrates).
        path = sqlite_file(url)
        self.turn = WriteTurn(f"{path}-writer.lock") if path else None
        self.watch = FileWatch(path) if path else None  # remembered once the file is opened

    def check_file(self) -> None:
        """Raise ``DatabaseGone`` if the SQLite file was deleted or replaced since it was opened."""
        if self.watch is not None:
            self.watch.check()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite): commits, or rolls back on error;
        never into a SQLite file that was deleted or replaced (``DatabaseGone``)."""
        if self.read_only:
            raise StorageError(f"storage: {describe(self.url)} is open read-only here")
        self.check_file()
        with self.writer_turn(), self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def writer_turn(self) -> contextlib.AbstractContextManager[None]:
        return self.turn.held() if self.turn is not None else contextlib.nullcontext()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(conn: Connection | None = None) -> Config:
    """An Alembic config pointing at the installed migrations package (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("storage.migrations")))
    cfg.attributes["connection"] = conn
    return cfg


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*["']?([\w-]+|None)""", re.M)


def script_heads() -> set[str]:
    """The head revisions of the migration chain, read from the version files' text: Alembic
    (a tenth of a second to import) loads only when the database is not at head (issue 13).
    ``tests/test_storage_schema.py`` pins this against Alembic's own reading."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for entry in files("storage.migrations").joinpath("versions").iterdir():
        if entry.name.endswith(".py") and not entry.name.startswith("_"):
            for name, value in _REVISION.findall(entry.read_text(encoding="utf-8")):
                (revisions if name == "revision" else parents).add(value)
    return revisions - parents


def current_heads(db: Database) -> set[str] | None:
    """The database's schema revisions; None when it holds no archive schema yet."""
    with db.engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except SQLAlchemyError:
            return None
    return {str(row[0]) for row in rows} or None


@contextmanager
def _migration_transaction(db: Database) -> Iterator[Connection]:
    """A write transaction for migrations; on SQLite with foreign keys off (Alembic's advice):
    a migration that rebuilds a table drops it, and with them on the drop cascades."""
    with db.writer_turn(), db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection
        if sqlite and raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, as SQLite requires
        try:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StorageError("migration left rows that break a foreign key")
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def require_head(db: Database) -> None:
    """A read-only opener's ``migrate``: the schema must be at head already, as it cannot be
    brought there without writing."""
    found = current_heads(db)
    if found is None:
        raise StorageError(f"no archive in {describe(db.url)} yet: `aggregator poll` creates it")
    if found != script_heads():
        raise StorageError(
            f"the archive in {describe(db.url)} is at schema revision {', '.join(sorted(found))}, "
            f"not {', '.join(sorted(script_heads()))}: a read-only view cannot upgrade it "
            "(`aggregator poll` or `run` does)"
        )


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this program's migration chain."""

    current: tuple[str, ...]  # () when it holds no archive schema yet
    heads: tuple[str, ...]
    pending: tuple[tuple[str, str], ...] = ()  # (revision, what it does), oldest first
    unknown: tuple[str, ...] = ()  # revisions newer than this program knows

    @property
    def at_head(self) -> bool:
        return bool(self.current) and set(self.current) == set(self.heads)


def schema_state(db: Database) -> SchemaState:
    """The database's revision, the head, and the migrations between; Alembic loads only when
    the two differ."""
    found, heads = current_heads(db), script_heads()
    if found == heads:
        return SchemaState(tuple(sorted(found)), tuple(sorted(heads)))
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = tuple(sorted(rev for rev in found or () if rev not in known))
    lower = "base" if not found or unknown else tuple(sorted(found))
    steps = [] if unknown else list(script.iterate_revisions("heads", lower))
    pending = tuple((rev.revision, (rev.doc or "").strip().splitlines()[0] if rev.doc else "")
                    for rev in reversed(steps))  # fmt: skip
    return SchemaState(tuple(sorted(found or ())), tuple(sorted(heads)), pending, unknown)


def not_upgraded(db: Database, state: SchemaState) -> StorageError:
    """What a command says when it may not migrate (``upgrade=False``) and must."""
    where = describe(db.url)
    if state.unknown:
        return StorageError(f"database {where} has schema revision {state.unknown[0]}, newer "
                            f"than this version of the program knows (head {state.heads[0]}); "
                            "upgrade the program")
    now = f"is at schema revision {state.current[0]}" if state.current else "has no schema yet"
    pending = len(state.pending)
    waiting = "1 migration is" if pending == 1 else f"{pending} migrations are"
    return StorageError(f"database {where} {now} and {waiting} pending "
                        f"(to {state.heads[0]}); automatic migration is off: run `aggregator db "
                        "upgrade` first")


def migrate(db: Database, *, create: bool = True, upgrade: bool = True) -> None:
    """Bring the schema to head in one transaction; refuse a database newer than this code.
    At head already (the usual case), one read and no Alembic. ``create=False`` (read-only
    commands) refuses a database that holds no archive yet instead of creating one;
    ``upgrade=False`` (``database_auto_migrate: false``) refuses any schema not at head."""
    found = current_heads(db)
    if found is None and not create:
        raise StorageError(f"no archive in {describe(db.url)} yet: `aggregator poll` creates it")
    if found is not None and found == script_heads():
        return
    if not upgrade:
        raise not_upgraded(db, schema_state(db))
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    with _migration_transaction(db) as conn:
        no_statement_timeout(conn)  # a migration of a big archive may take long
        lock_migrations(conn)
        current = MigrationContext.configure(conn).get_current_heads()
        newer = [rev for rev in current if rev not in known]
        if newer:
            raise StorageError(
                f"database {describe(db.url)} has schema revision {newer[0]}, newer than this "
                f"version of the program knows (head {script.get_current_head()}); upgrade it"
            )
        if set(current) != set(script.get_heads()):
            command.upgrade(alembic_config(conn), "head")
