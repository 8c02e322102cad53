"""Committed means durable, and a vanished database is noticed (issue 10, item 7).

SQLite syncs every commit by default (``synchronous=FULL``); ``?synchronous=normal`` on the URL
is the explicit, documented way to trade that for speed, and any other value is refused. A
SQLite file deleted or replaced under a running ``run`` or ``poll --once`` stops it within a
tick, with one loud line and exit status 3, instead of writing into an unlinked file.
(PostgreSQL's durability is the server's: its default ``synchronous_commit=on`` is left alone.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aggregator.config.settings import load_settings
from storage.dbfile import DatabaseGone
from storage.errors import StorageError
from storage.records import FeedConfig
from storage.store import Store
from tests.dbfixtures import T0
from tests.feedgen import Item, rss
from tests.httpserver import TestServer
from tests.serviceproc import ROOT
from tests.test_service import Running, write_config


def synchronous(store: Store) -> int:
    with store.db.write() as conn:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_sqlite_commits_are_synced_unless_the_url_says_normal(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert synchronous(store) == 2  # FULL
    with Store.open(f"sqlite:///{tmp_path / 'b.db'}?synchronous=NORMAL") as store:
        assert synchronous(store) == 1
        assert (tmp_path / "b.db").exists()  # the query is not part of the file name


def test_a_relative_database_with_its_setting_is_resolved_beside_the_config(
    tmp_path: Path,
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("database: sqlite:///data/archive.db?synchronous=normal\n", encoding="utf-8")
    url = load_settings(config, env={}).database
    with Store.open(url) as store:
        assert synchronous(store) == 1
    assert (tmp_path / "data" / "archive.db").exists()


@pytest.mark.parametrize("value", ["off", "extra", "1"])
def test_other_synchronous_values_are_refused_in_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(StorageError) as caught:
        Store.open(f"sqlite:///{tmp_path / 'a.db'}?synchronous={value}")
    message = str(caught.value)
    assert message.startswith("storage: database URL") and "\n" not in message
    assert f"synchronous={value} is not one of full, normal" in message


def test_no_write_goes_to_a_deleted_or_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.sync_feeds([FeedConfig("https://one.example/feed")], T0)
        shutil.copy(path, tmp_path / "copy.db")
        path.unlink()
        with pytest.raises(DatabaseGone, match=r"a\.db was deleted while this process"):
            store.sync_feeds([FeedConfig("https://two.example/feed")], T0)
        (tmp_path / "copy.db").replace(path)
        with pytest.raises(DatabaseGone, match="was replaced by another file"):
            store.check_database()


def remove(path: Path) -> None:
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        (path.parent / name).unlink(missing_ok=True)


def replace_with_another(path: Path) -> None:
    other = path.parent / "restored.db"
    Store.open(f"sqlite:///{other}").close()
    other.replace(path)


VANISH = [pytest.param(remove, "was deleted", id="deleted"),
          pytest.param(replace_with_another, "was replaced", id="replaced")]  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("vanish", "said"), VANISH)
def test_run_stops_when_its_database_file_vanishes(
    http_server: TestServer, tmp_path: Path, vanish: object, said: str
) -> None:
    http_server.route("/f.xml", body=rss([Item(1, http_server.base_url)]))
    path = tmp_path / "archive.db"
    service = Running(write_config(tmp_path, f"sqlite:///{path}", http_server.url("/f.xml")))
    try:
        deadline = time.monotonic() + 60
        while http_server.hits("/f.xml") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        vanish(path)  # type: ignore[operator]
        service.proc.wait(timeout=60)
    finally:
        if service.proc.poll() is None:
            service.terminate()
    service.reader.join(timeout=5)
    assert service.proc.returncode == 3, service.stderr[-3000:]
    assert f"storage: database file {path} {said}" in service.stderr
    assert "Traceback" not in service.stderr, service.stderr[-3000:]


@pytest.mark.timeout(120)
def test_poll_once_stops_when_its_database_file_is_deleted(
    http_server: TestServer, tmp_path: Path
) -> None:
    for n in range(4):  # slow feeds: the poll is still in flight when the file goes
        http_server.route(f"/f{n}.xml", body=rss([Item(n, http_server.base_url)]), delay=5.0)
    path = tmp_path / "archive.db"
    config = write_config(tmp_path, f"sqlite:///{path}",
                          *(http_server.url(f"/f{n}.xml") for n in range(4)))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--once"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while http_server.hits("/f0.xml") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        remove(path)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err[-3000:]
    assert f"storage: database file {path} was deleted" in err
    assert "Traceback" not in err, err[-3000:]
    assert not path.exists()  # nothing made a new, empty archive in its place
