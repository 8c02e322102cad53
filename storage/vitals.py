"""The archive's vital signs for health checks and metrics: can it write now, how big, how late.

Read-only but for the probe, which opens a write transaction and rolls it back at once: on
SQLite in WAL mode reads go on under a held write lock, so only taking the lock shows that a
poll's write could land. Nothing here is on the polling path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, func, select, text

from storage.dialect import BUSY_TIMEOUT_MS, WRITE_OPTION, is_postgres
from storage.engine import Database, sqlite_file
from storage.records import STATUS_NOT_MODIFIED, STATUS_OK
from storage.tables import feeds, polls


@dataclass(frozen=True, slots=True)
class Vitals:
    database_bytes: int | None
    feeds_active: int
    feeds_overdue: int  # active feeds whose next poll is more than one interval in the past
    # The stalest active feed's last good poll: at least this old (the history keeps 20 polls;
    # a feed with none good there counts from its oldest kept poll, or its creation).
    oldest_success: datetime | None


def probe(db: Database, timeout: float) -> None:
    """Raise (a driver error) unless the database takes a write transaction within ``timeout``
    seconds; nothing is written. Bypasses the process's writer turn: our own writers are not
    what is being checked."""
    with db.engine.connect() as conn:
        if is_postgres(conn):
            with conn.begin():
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                conn.exec_driver_sql("SELECT 1")
            return
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.commit()  # the pragma began a (deferred) transaction; the probe needs its own
        try:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin() as trans:
                trans.rollback()
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.commit()


def read(db: Database, now: datetime) -> Vitals:
    with db.engine.connect() as conn, conn.begin():
        active = conn.execute(select(func.count()).where(feeds.c.active, ~feeds.c.gone)).scalar()
        return Vitals(
            database_bytes=_size(db, conn),
            feeds_active=int(active or 0),
            feeds_overdue=_overdue(conn, now),
            oldest_success=_oldest_success(conn),
        )


def _size(db: Database, conn: Connection) -> int | None:
    if is_postgres(conn):
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        return int(size) if size is not None else None
    path = sqlite_file(db.url)
    if path is None:
        return None
    files = (Path(path), Path(f"{path}-wal"))
    return sum(f.stat().st_size for f in files if f.exists())


def _overdue(conn: Connection, now: datetime) -> int:
    """Only the feeds already due are read: usually a handful, never the whole table."""
    due = conn.execute(
        select(feeds.c.next_check, feeds.c.interval)
        .where(feeds.c.active, ~feeds.c.gone, feeds.c.next_check < now)
    ).all()
    return sum(1 for r in due if r.next_check + timedelta(seconds=r.interval) < now)


def _oldest_success(conn: Connection) -> datetime | None:
    good = (
        select(func.max(polls.c.polled_at))
        .where(polls.c.feed_id == feeds.c.id, polls.c.status.in_([STATUS_OK, STATUS_NOT_MODIFIED]))
        .scalar_subquery()
    )
    kept = select(func.min(polls.c.polled_at)).where(polls.c.feed_id == feeds.c.id)
    stalest = func.min(func.coalesce(good, kept.scalar_subquery(), feeds.c.created_at))
    value = conn.execute(select(stalest).where(feeds.c.active, ~feeds.c.gone)).scalar()
    return value if isinstance(value, datetime) or value is None else None
