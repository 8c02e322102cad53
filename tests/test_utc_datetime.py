"""UTCDateTime's SQLite bind processor writes what the general path wrote: the stored text is
what times compare and sort by, so a fast path that differed by a byte would misplace a poll.

The reference is SQLAlchemy's own chain: ``utc_naive`` (``process_bind_param``), then the
SQLite DATETIME type's format.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, select, text
from sqlalchemy.dialects import sqlite

from storage.errors import StorageError
from storage.tables import UTCDateTime, utc_naive

SQLITE = sqlite.dialect()
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# a day inside the calendar's ends, so that moving to UTC cannot leave it
AWARE = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC) | OFFSETS)  # fmt: skip


def general(value: datetime) -> str:
    """What SQLAlchemy writes for the column without the fast path."""
    process = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    written: str = process(utc_naive(value))
    return written


@given(AWARE)
def test_sqlite_binds_the_text_the_general_path_writes(value: datetime) -> None:
    process = UTCDateTime()._cached_bind_processor(SQLITE)
    assert process is not None
    assert process(value) == general(value)
    assert process(None) is None


def test_sqlite_binds_in_one_call() -> None:
    """The fast path is the processor SQLite statements get (not the composed chain)."""
    process = UTCDateTime()._cached_bind_processor(SQLITE)
    assert getattr(process, "__qualname__", "").startswith("UTCDateTime.bind_processor")


def test_a_naive_datetime_is_still_refused() -> None:
    process = UTCDateTime()._cached_bind_processor(SQLITE)
    assert process is not None
    with pytest.raises(StorageError, match="naive datetime"):
        process(datetime(2026, 1, 1))


def test_postgresql_keeps_the_general_path() -> None:
    pg = create_engine("postgresql+psycopg://").dialect  # no connection is made
    process = UTCDateTime()._cached_bind_processor(pg)
    aware = datetime(2026, 3, 1, 12, 0, 5, 7, tzinfo=timezone(timedelta(hours=-5)))
    sent = aware if process is None else process(aware)
    assert sent == datetime(2026, 3, 1, 17, 0, 5, 7)


def test_stored_text_and_value_read_back(tmp_path: Path) -> None:
    """Through a real SQLite database: the row holds the general path's text, and the value
    comes back aware, in UTC, equal to what was written."""
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UTCDateTime))  # fmt: skip
    engine = create_engine(f"sqlite:///{tmp_path / 'times.db'}")
    tokyo, west = timezone(timedelta(hours=9)), timezone(timedelta(minutes=-330))
    values = [datetime(2026, 1, 1, tzinfo=UTC),
              datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=tokyo),
              datetime(1999, 6, 1, 1, 2, 3, 4, tzinfo=west), None]  # fmt: skip
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": i, "at": v} for i, v in enumerate(values)])
        raw = [r[0] for r in conn.execute(text("SELECT at FROM t ORDER BY id"))]
        back = [r[0] for r in conn.execute(select(table.c.at).order_by(table.c.id))]
    engine.dispose()
    assert raw == [None if v is None else general(v) for v in values]
    assert back == values
    assert all(v is None or v.tzinfo is UTC for v in back)
