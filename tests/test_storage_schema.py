"""The Alembic chain builds exactly the declared tables, on SQLite and PostgreSQL; open refuses a
database newer than the code; NUL characters and offsets survive the round trip."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.engine import Database, alembic_config, current_heads, script_heads
from storage.errors import StorageError
from storage.records import ExportFilter, FeedConfig
from storage.store import Store
from storage.tables import compared, metadata
from tests.dbfixtures import T0, entry, poll


def test_migrations_from_base_to_head_match_the_declared_tables(store_url: str) -> None:
    db = Database(store_url)
    try:
        with db.write() as conn:
            command.upgrade(alembic_config(conn), "head")
        with db.read() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True,
                            "include_name": compared}
            )
            assert compare_metadata(ctx, metadata) == []
            assert ctx.get_current_revision() is not None
    finally:
        db.dispose()


def test_open_is_repeatable_and_keeps_data(store_url: str) -> None:
    with Store.open(store_url) as st:
        st.sync_feeds([FeedConfig("https://a.example/feed")], T0)
    with Store.open(store_url) as st:
        assert [f.url for f in st.list_feeds()] == ["https://a.example/feed"]


def test_open_refuses_a_database_newer_than_the_code(store_url: str) -> None:
    Store.open(store_url).close()
    db = Database(store_url)
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose()
    with pytest.raises(StorageError, match=r"9999.*newer"):
        Store.open(store_url)


def test_the_heads_read_from_the_version_files_are_alembics() -> None:
    """Opening an archive at head skips Alembic by reading the chain's heads from the files'
    text (issue 13); this keeps that reading equal to Alembic's own."""
    assert script_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_a_read_only_open_never_creates_an_archive(store_url: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"^storage: no archive .* `aggregator poll` creates it"):
        Store.open(store_url, create=False)
    db = Database(store_url)
    try:
        assert current_heads(db) is None  # nothing was created
    finally:
        db.dispose()
    missing = tmp_path / "sub" / "none.db"
    with pytest.raises(StorageError, match=f"^storage: no archive at {missing} yet"):
        Store.open(f"sqlite:///{missing}", create=False)
    assert not missing.parent.exists()
    Store.open(store_url).close()
    with Store.open(store_url, create=False) as st:
        assert st.list_feeds() == []


def test_an_archive_one_revision_behind_is_upgraded_on_open(store_url: str) -> None:
    Store.open(store_url).close()
    db = Database(store_url)
    try:
        with db.write() as conn:
            command.downgrade(alembic_config(conn), "-1")
        assert current_heads(db) != script_heads()
    finally:
        db.dispose()
    Store.open(store_url, create=False).close()
    db = Database(store_url)
    try:
        assert current_heads(db) == script_heads()
    finally:
        db.dispose()


def test_driver_errors_become_storage_errors(tmp_path: object) -> None:
    with pytest.raises(StorageError, match=r"^storage: open"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_nul_characters_are_stripped_and_offsets_kept(store: Store) -> None:
    store.sync_feeds([FeedConfig("https://a.example/feed")], T0)
    plus5 = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    e = entry(1, title="Ti\x00tle", summary="a\x00b", authors=("A\x00nn",), published=plus5)
    poll(store, "https://a.example/feed", T0, [e])
    [item] = store.iter_items(ExportFilter())
    assert (item["title"], item["summary"], item["authors"]) == ("Title", "ab", ["Ann"])
    assert item["published"] == "2026-03-01T17:30:00+05:30"
    assert store.integrity_check() == []
