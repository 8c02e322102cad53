"""How the archive meets its database: URLs it refuses, timeouts against a server that never
answers, paths that are no database file, and two instances adding the same feeds at once."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.dburl import DatabaseURLError, Timeouts, check_database_url
from storage.errors import StorageError
from storage.records import FeedConfig
from storage.store import Store
from tests.dbfixtures import T0

REFUSED = {
    "mysql://user@db.example/archive": "unsupported database 'mysql'",
    "garbage-url": "is not a database URL",
    "": "is not a database URL",
    "sqlite:///": "in-memory database",
    "sqlite://": "in-memory database",
    "sqlite:///:memory:": "in-memory database",
    "sqlite:///file:x?mode=memory&uri=true": "in-memory database",
    "sqlite://host/x.db": "a SQLite URL has no host",
    "sqlite+aiosqlite:///x.db": "unsupported driver",
    "postgresql+psycopg2://u@h/db": "that driver is not installed",
    "postgresql+asyncpg://u@h/db": "that driver is not installed",
    "postgresql://u@h:port/db": "bad port 'port'",
    "postgresql://u@h:99999/db": "bad port '99999'",
    "postgresql://u:secret@h/db two": "is not a database URL",
}


@pytest.mark.parametrize("url", sorted(REFUSED))
def test_unusable_urls_are_refused_with_the_reason(url: str) -> None:
    with pytest.raises(DatabaseURLError, match=REFUSED[url]):
        check_database_url(url)
    with pytest.raises(StorageError, match=REFUSED[url]):  # the store refuses them too
        Store.open(url)


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(DatabaseURLError) as caught:
        check_database_url("postgresql://u:secret@h/db two")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(("url", "engine_url"), [
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgres://u:p@h:5433/db?sslmode=require", "postgresql+psycopg://u:p@h:5433/db?sslmode=require"),
    ("postgresql+psycopg://u@[::1]:5432/db", "postgresql+psycopg://u@[::1]:5432/db"),
    ("  sqlite:///data/archive.db ", "sqlite:///data/archive.db"),
    ("sqlite:////var/lib/archive.db", "sqlite:////var/lib/archive.db"),
])  # fmt: skip
def test_accepted_urls_and_how_the_engine_gets_them(url: str, engine_url: str) -> None:
    assert check_database_url(url) == engine_url


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_accepts_and_never_answers_is_given_up(
    silent_server: tuple[int, list[socket.socket]],
) -> None:
    port, accepted = silent_server
    url = f"postgresql://archiver:secret@127.0.0.1:{port}/archive"
    with pytest.raises(StorageError) as caught:
        Store.open(url, Timeouts(connect=1))
    message = str(caught.value)
    assert message.startswith(f"storage: open postgresql://archiver:***@127.0.0.1:{port}/archive")
    assert "timeout" in message and "\n" not in message and "secret" not in message
    assert accepted, "the client never reached the server"


@pytest.mark.postgres
def test_postgres_statement_timeout_is_set_and_lifted_for_migrations(
    store_url_factory: Callable[[str], str],
) -> None:
    url = store_url_factory("postgres")
    with Store.open(url, Timeouts(statement=1.5)) as store, store.db.read() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
        with pytest.raises(Exception, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(3)"))
    with Store.open(url, Timeouts(statement=None)) as store, store.db.read() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
    from storage.dialect import no_statement_timeout

    with Store.open(url, Timeouts(statement=2)) as store, store.db.write() as conn:
        no_statement_timeout(conn)  # what the migration transaction does first
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"


@pytest.mark.postgres
def test_a_timed_out_statement_is_a_storage_error(store_url_factory: Callable[[str], str]) -> None:
    """Through the store's boundary: one line, StorageError (exit 3 in the CLI)."""
    url = store_url_factory("postgres")
    with Store.open(url, Timeouts(statement=1)) as store:
        store.sync_feeds([FeedConfig("https://a.example/feed")], T0)
        with store.db.write() as conn:  # hold the feed row, as a stuck instance would
            conn.execute(text("SELECT id FROM feeds FOR UPDATE"))
            with Store.open(url, Timeouts(statement=1)) as other, pytest.raises(
                StorageError, match=r"^storage: sync_feeds failed: .*statement timeout"
            ):  # fmt: skip
                other.sync_feeds([FeedConfig("https://a.example/feed", title="new")], T0)


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_sqlite_path_that_is_no_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "archive.db"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)  # SQLite would block for ever reading it
    name = "a directory" if kind == "directory" else "a FIFO (named pipe)"
    with pytest.raises(StorageError, match=re.escape(f"storage: {path} is {name}, not a SQLite")):
        Store.open(f"sqlite:///{path}")


def test_the_sqlite_writer_lock_is_never_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    db = tmp_path / "archive.db"
    (tmp_path / "archive.db-writer.lock").symlink_to(victim)
    with pytest.raises(StorageError, match=r"^storage: the writer lock .* is a symbolic"):
        Store.open(f"sqlite:///{db}")
    assert victim.read_text(encoding="utf-8") == "keep me"


ROUNDS = 12


def test_two_instances_adding_the_same_new_feeds_at_once(
    store_url: str,
) -> None:
    """Two stores (two instances) sync one config at the same moment, many times over: never a
    unique violation, and every feed exists once. Without the sync's lock it failed on
    PostgreSQL in most rounds (UniqueViolation uq_feeds_url)."""
    stores = [Store.open(store_url), Store.open(store_url)]
    errors: list[BaseException] = []
    try:
        for round_ in range(ROUNDS):
            configs = [FeedConfig(f"https://r{round_}.example/feed/{n}") for n in range(20)]
            start = threading.Barrier(2)

            now = T0 + timedelta(minutes=round_)

            def sync(store: Store, configs: list[FeedConfig] = configs,
                     start: threading.Barrier = start, now: datetime = now) -> None:  # fmt: skip
                start.wait()
                try:
                    store.sync_feeds(configs, now)
                except BaseException as exc:  # recorded and asserted below
                    errors.append(exc)

            threads = [threading.Thread(target=sync, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == [], f"round {round_}: {errors[0]}"
            urls = [f.url for f in stores[0].list_feeds() if f.active]
            assert sorted(urls) == sorted(c.url for c in configs)
    finally:
        for store in stores:
            store.close()


def test_a_feed_added_meanwhile_is_taken_as_found(store: Store) -> None:
    """The sync's insert meets a row another writer (an import) added after the sync looked:
    that row is updated, not inserted twice."""
    from storage import feeds
    from storage.tables import feeds as feeds_t

    url = "https://a.example/feed"
    with store.db.write() as conn:
        row = feeds.new_feed_values(url, T0, "imported") | {"active": False}
        other = conn.execute(feeds_t.insert().values(**row).returning(feeds_t.c.id)).scalar_one()
        cfg = FeedConfig(url, title="Configured")
        fid = feeds._insert_feed(conn, cfg, feeds.config_values(cfg) | {"config_url": url}, T0)
    assert fid == other
    [feed] = store.list_feeds()
    assert (feed.id, feed.title, feed.active) == (other, "Configured", True)


@pytest.mark.postgres
def test_postgres_connections_carry_the_timeouts(store_url_factory: Callable[[str], str]) -> None:
    """The connect timeout from the settings unless the URL names its own; keepalives and a TCP
    user timeout so that a vanished server is noticed in about a minute."""
    url = store_url_factory("postgres")
    for query, connect in (("", "7"), ("&connect_timeout=4", "4")):
        with Store.open(url + query, Timeouts(connect=6.2)) as store, store.db.read() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            dsn = dict(part.split("=", 1) for part in raw.info.dsn.split())
        assert dsn["connect_timeout"] == connect
        assert (dsn["keepalives_idle"], dsn["tcp_user_timeout"]) == ("30", "60000")
