"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

``store_url`` gives a fresh, empty database per test: a SQLite file in ``tmp_path``, or a fresh
schema on the server at ``AGGREGATOR_TEST_PG_URL`` (reached through ``search_path``, so tests
in parallel under pytest-xdist never see each other). An unreachable PostgreSQL skips its half
of the tests, unless ``AGGREGATOR_REQUIRE_PG=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.records import STATUS_OK, Entry, FeedState, PollResult, PollSummary
from storage.store import Store

__all__ = ["make_store_url", "pg_admin_url", "store", "store_url", "store_url_factory"]

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_admin_url() -> str:
    return os.environ.get("AGGREGATOR_TEST_PG_URL", PG_DEFAULT)


def _pg_unavailable(reason: str) -> None:
    message = f"PostgreSQL not reachable at {pg_admin_url()}: {reason}"
    if os.environ.get("AGGREGATOR_REQUIRE_PG") == "1":
        pytest.fail(message)
    pytest.skip(message)


class _Schemas:
    """Creates throw-away PostgreSQL schemas and drops them at the end."""

    def __init__(self) -> None:
        self.engine = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def new_url(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        self.made.append(name)
        url = make_url(pg_admin_url()).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self.engine.dispose()


def make_store_url(backend: str, tmp_path: Path, schemas: Callable[[], _Schemas]) -> str:
    if backend == "sqlite":
        return f"sqlite:///{quote(str(tmp_path / f'archive-{uuid.uuid4().hex[:8]}.db'))}"
    return schemas().new_url()


@pytest.fixture
def store_url_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[
    Callable[[str], str]
]:  # fmt: skip
    """``factory("sqlite" | "postgres")`` -> a fresh empty database URL (for cross-DB tests)."""
    holder: list[_Schemas] = []

    def schemas() -> _Schemas:
        if not holder:
            try:
                made = _Schemas()
                with made.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception as exc:  # any failure to connect means "not reachable"
                _pg_unavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            holder.append(made)
        return holder[0]

    yield lambda backend: make_store_url(backend, tmp_path, schemas)
    if holder:
        holder[0].drop_all()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, store_url_factory: Callable[[str], str]) -> str:
    """A fresh empty database URL, once on SQLite and once on PostgreSQL."""
    return store_url_factory(request.param)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A Store opened (migrated) on ``store_url``."""
    opened = Store.open(store_url)
    yield opened
    opened.close()


# -- builders for storage tests (imported explicitly; not fixtures) ---------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(n: int | str, **over: Any) -> Entry:
    """An entry with a long enough body to have a content fingerprint."""
    values: dict[str, Any] = {
        "key": f"guid-{n}", "guid": f"guid-{n}", "url": f"https://news.example/story/{n}",
        "title": f"Story {n}", "summary": f"Summary of story {n}. " + "Lorem ipsum dolor. " * 6,
    }  # fmt: skip
    values.update(over)
    return Entry(**values)


def claim_one(st: Store, url: str, now: datetime, owner: str = "w1") -> FeedState:
    feed = st.get_feed(url)
    assert feed is not None
    claimed = st.claim_due(now, 100_000, owner, 300)
    for other in claimed:
        if other.url != url:
            st.release(other.id, owner)
    mine = [f for f in claimed if f.url == url]
    assert mine, f"{url} was not due at {now}"
    return mine[0]


def poll_result(
    feed: FeedState, now: datetime, entries: Sequence[Entry], **over: Any
) -> PollResult:
    values: dict[str, Any] = {
        "feed_id": feed.id, "lease_owner": "w1", "polled_at": now, "status": STATUS_OK,
        "next_check": now + timedelta(minutes=15), "next_reason": "interval", "interval": 900.0,
        "error_count": 0, "http_status": 200, "entries": tuple(entries),
    }  # fmt: skip
    values.update(over)
    return PollResult(**values)


def poll(st: Store, url: str, now: datetime, entries: Sequence[Entry], **over: Any) -> PollSummary:
    """Claim ``url`` at ``now`` and apply a poll that saw ``entries``."""
    owner = over.pop("lease_owner", "w1")
    feed = claim_one(st, url, now, owner)
    return st.apply_poll(poll_result(feed, now, entries, lease_owner=owner, **over))
