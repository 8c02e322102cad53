"""``aggregator db check|backup|vacuum|upgrade`` and ``run --no-migrate`` (issue 15), on SQLite
and PostgreSQL: a check reports the schema as it is (never migrates), names each problem and
exits 1; a backup is taken while another process writes and opens whole; vacuum reports sizes;
upgrade names the revisions; with automatic migration off, an old schema is refused with the
command that fixes it."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from aggregator.cli.commands import cli
from storage.engine import alembic_config, script_heads
from storage.records import FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

ROOT = Path(__file__).resolve().parent.parent
FEED = "https://news.example/feed.xml"
HEAD = sorted(script_heads())[0]
# The migrations after 0007, named by their files (revision ids are the files' number prefixes).
AFTER_0007 = sorted(p.name[:4] for p in (ROOT / "storage" / "migrations" / "versions").glob("0*.py")
                    if p.name[:4] > "0007")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def filled(url: str, items: int = 3) -> None:
    with Store.open(url) as store:
        store.sync_feeds([FeedConfig(url=FEED, fetch_articles=False)], T0)
        poll(store, FEED, T0, [entry(i) for i in range(items)])


def at_revision(url: str, revision: str) -> None:
    """A database as an older program left it: the schema at ``revision``."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


def test_check_of_a_healthy_archive(store_url: str) -> None:
    filled(store_url)
    code, out, err = run("--database", store_url, "db", "check")
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0].startswith(("SQLite", "PostgreSQL"), len("db: "))
    assert lines[1] == f"db: schema revision {HEAD}; this program's head {HEAD}"
    assert re.fullmatch(r"db: size \d+\.\d MiB", lines[2])
    assert lines[-1] == "db: ok"


def test_an_old_schema_is_reported_and_run_refuses_to_migrate_it_until_upgraded(
    store_url: str, tmp_path: Path
) -> None:
    at_revision(store_url, "0007")
    code, out, err = run("--database", store_url, "db", "check")
    assert code == 1
    assert f"db: schema revision 0007; this program's head {HEAD}\n" in out
    problems = err.splitlines()
    assert [line[:len("db: problem: pending migration 0008:")] for line in problems[:-1]] == [
        f"db: problem: pending migration {rev}:" for rev in AFTER_0007]
    assert problems[-1] == f"db: {len(AFTER_0007)} problems"  # 3 since migration 0010

    config = tmp_path / "feeds.yaml"
    config.write_text(f"database: '{store_url}'\nfeeds:\n  - url: {FEED}\n", encoding="utf-8")
    code, _, err = run("-c", str(config), "run", "--no-migrate")
    assert code == 3
    assert err.startswith("storage: database ")
    pending = len(AFTER_0007)
    assert err.endswith(f"is at schema revision 0007 and {pending} migrations are pending (to "
                        f"{HEAD}); automatic migration is off: run `aggregator db upgrade` "
                        "first\n")  # fmt: skip
    config.write_text(config.read_text() + "database_auto_migrate: false\n", encoding="utf-8")
    code, _, err = run("-c", str(config), "poll", "--once")
    assert code == 3 and "run `aggregator db upgrade` first" in err
    assert current(store_url) == {"0007"}  # neither touched the schema

    assert run("-c", str(config), "db", "upgrade")[:2] == (
        0, f"db: upgraded from revision 0007 to {HEAD}\n")
    assert run("-c", str(config), "db", "upgrade")[:2] == (
        0, f"db: already at revision {HEAD}; nothing to do\n")
    assert run("-c", str(config), "db", "check")[0] == 0


def current(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        engine.dispose()


def test_an_empty_database_lists_every_migration_and_upgrade_creates_the_schema(
    store_url: str,
) -> None:
    if store_url.startswith("sqlite"):
        sqlite3.connect(store_url.removeprefix("sqlite:///")).close()  # an empty file
    code, out, err = run("--database", store_url, "db", "check")
    assert code == 1
    assert "db: schema revision none (no archive yet)" in out
    pending = [line for line in err.splitlines() if line.startswith("db: problem: pending")]
    assert pending[0].startswith("db: problem: pending migration 0001: ")
    assert pending[-1].startswith(f"db: problem: pending migration {HEAD}: ")
    assert len(pending) == int(HEAD)
    assert run("--database", store_url, "db", "upgrade")[:2] == (
        0, f"db: upgraded from revision none (empty database) to {HEAD}\n")
    assert run("--database", store_url, "db", "check")[0] == 0


def test_check_names_a_broken_foreign_key_and_an_item_without_revision(tmp_path: Path) -> None:
    path = tmp_path / "archive.db"
    url = f"sqlite:///{path}"
    filled(url)
    raw = sqlite3.connect(path)  # foreign keys off: what a damaged file may hold
    raw.execute("UPDATE sightings SET item_id = 999999 WHERE id = (SELECT min(id) FROM sightings)")
    raw.execute("DELETE FROM revisions WHERE item_id = (SELECT max(id) FROM items)")
    raw.commit()
    raw.close()
    code, _, err = run("--database", url, "db", "check")
    assert code == 1
    problems = err.splitlines()
    assert problems[0].startswith("db: problem: foreign_key_check: ('sightings', ")
    assert problems[1:] == ["db: problem: 1 items have no revision", "db: 2 problems"]


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    for args in (["db", "check"], ["db", "vacuum"], ["db", "backup", str(tmp_path / "b.db")]):
        code, _, err = run("--database", url, *args)
        assert (code, err) == (3, f"storage: no archive at {tmp_path / 'none.db'} (`aggregator "
                                  "db upgrade` creates one)\n")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == []


WRITER = """
import sys
from datetime import timedelta
from storage.records import FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll
url, stop = sys.argv[1], sys.argv[2]
import pathlib
with Store.open(url) as store:
    store.sync_feeds([FeedConfig(url="https://w.example/feed", fetch_articles=False)], T0)
    n = 0
    while not pathlib.Path(stop).exists() and n < 100_000:
        n += 1
        poll(store, "https://w.example/feed", T0 + timedelta(minutes=16 * n),
             [entry(f"w{n}-{k}") for k in range(5)])
        print(n, flush=True)
"""


@contextmanager
def writer(url: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    stop = tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, str(stop)], text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield proc
    finally:
        stop.touch()
        proc.wait(timeout=60)


def wait_for(proc: subprocess.Popen[str], count: int) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:
        if int(line) >= count:
            return int(line)
    raise AssertionError(f"the writer stopped before {count} polls (status {proc.wait()})")


def test_backup_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "archive.db"
    url = f"sqlite:///{path}"
    filled(url, items=2000)  # a few MiB: the copy takes a while
    target = tmp_path / "backups" / "archive-1.db"
    target.parent.mkdir()
    with writer(url, tmp_path) as proc:
        seen = wait_for(proc, 5)  # the writer is in its loop
        code, out, err = run("--database", url, "db", "backup", str(target))
        assert code == 0, err
        assert wait_for(proc, seen + 5) > seen  # and it went on writing afterwards
    assert re.fullmatch(rf"db: backed up to {re.escape(str(target))} \(\d+\.\d MiB, "
                        r"integrity ok\)\n", out)  # fmt: skip
    assert sorted(p.name for p in target.parent.iterdir()) == ["archive-1.db"]  # one file
    with Store.open(f"sqlite:///{target}", create=False) as copy:
        assert copy.integrity_check() == []
        copied = copy.stats()
    with Store.open(url) as live:
        assert 2005 <= copied["items"] <= live.stats()["items"]
    assert run("--database", f"sqlite:///{target}", "db", "check")[0] == 0


def test_backup_never_overwrites(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    filled(url)
    target = tmp_path / "old.db"
    target.write_bytes(b"an older backup")
    code, _, err = run("--database", url, "db", "backup", str(target))
    assert (code, err) == (3, f"storage: db backup: {target} exists; give a new file name\n")
    assert target.read_bytes() == b"an older backup"


@pytest.mark.postgres
def test_backup_of_postgresql_points_to_pg_dump(store_url_factory: object, tmp_path: Path) -> None:
    url = store_url_factory("postgres")  # type: ignore[operator]
    filled(url)
    secret = url.replace("postgres@", "postgres:s3cret@")
    code, out, err = run("--database", secret, "db", "backup", str(tmp_path / "x.dump"))
    assert (code, out) == (2, "")
    assert err.startswith(f"db backup: the database is PostgreSQL, which backs up with its own "
                          f"tool: pg_dump --format=custom --file={tmp_path / 'x.dump'} "
                          "'postgresql://postgres:***@127.0.0.1")  # fmt: skip
    assert "s3cret" not in err and not (tmp_path / "x.dump").exists()


def test_vacuum_reports_the_size_before_and_after(store_url: str) -> None:
    filled(store_url, items=1500)
    engine = create_engine(store_url)
    with engine.begin() as conn:  # free a good part of the pages
        conn.execute(text("DELETE FROM revisions"))
    engine.dispose()
    code, out, err = run("--database", store_url, "db", "vacuum")
    assert (code, err) == (0, "")
    match = re.fullmatch(r"db: vacuumed: (\d+\.\d) MiB before, (\d+\.\d) MiB after\n", out)
    assert match, out
    if store_url.startswith("sqlite"):  # PostgreSQL's plain VACUUM keeps the space for reuse
        assert float(match[2]) < float(match[1])
    assert run("--database", store_url, "db", "check")[0] == 1  # the items lost their revisions
