"""A crash does not hide feeds (issue 10, item 6): SIGKILL, then the very next ``poll --once``
stores everything, on SQLite and PostgreSQL, with the default five-minute lease.

The killed process is ``poll --once`` or ``run`` under ``tests.crashrunner``, which SIGKILLs
itself at a chosen point of the write path: right after it claimed every feed (all leases held
by a dead process), after its first poll committed (some written, the rest held), or right after
it claimed article pages. The next ``poll --once`` must then poll every feed and fetch every
page at once, say whose leases it freed, and skip nothing. A live holder's feeds, by contrast,
are skipped and reported by count and holder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import holders
from storage.records import ExportFilter
from storage.store import Store
from storage.tables import feeds as feeds_t
from tests.crashrunner import ENV
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer
from tests.serviceproc import ROOT, ServiceProcess

FEEDS = 6
ITEMS = 3


def serve(server: TestServer, pages: bool) -> list[str]:
    """``FEEDS`` feeds of ``ITEMS`` entries each (slow enough for a kill to find them in flight),
    and the entries' pages when ``pages``."""
    urls = []
    for n in range(FEEDS):
        items = [Item(n * 100 + i, server.base_url) for i in range(ITEMS)]
        server.route(f"/f{n}.xml", body=rss(items), etag=f'"f{n}"', delay=0.2)
        for item in items if pages else ():
            server.route(f"/news/{item.n}.html", body=article_page(item),
                         headers={"Content-Type": "text/html; charset=utf-8"})  # fmt: skip
        urls.append(server.url(f"/f{n}.xml"))
    return urls


def write_config(path: Path, database: str, urls: list[str], pages: bool,
                 processes: int = 1) -> Path:  # fmt: skip
    feeds = "\n".join(f"  - url: {url}" for url in urls)
    path.write_text(
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        f"defaults:\n  fetch_articles: {'true' if pages else 'false'}\n"
        f"service:\n  tick: 0.2s\n  lease: 5m\n  concurrency: 4\n  processes: {processes}\n"
        f"feeds:\n{feeds}\n",
        encoding="utf-8",
    )
    return path


def crash(config: Path, command: list[str], at: str) -> str:
    """Run ``command`` until it SIGKILLs itself at ``at``; its standard error."""
    proc = ServiceProcess([sys.executable, "-m", "tests.crashrunner", "--config", str(config),
                           *command], env={ENV: at})  # fmt: skip
    proc.go()
    proc.proc.wait(timeout=120)
    proc.reader.join(timeout=5)
    assert proc.proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert f"crashrunner: SIGKILL at {at.rsplit(':', 1)[0]}" in proc.stderr
    return proc.stderr


def poll_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--once"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def leased(url: str) -> int:
    """Feeds whose lease has not expired."""
    with Store.open(url) as store, store.db.read() as conn:
        query = select(func.count()).where(feeds_t.c.lease_until > datetime.now(UTC))
        return int(conn.execute(query).scalar_one())


def archived(url: str) -> tuple[int, list[str], int]:
    """(items, article statuses, feeds never polled)."""
    with Store.open(url) as store:
        items = list(store.iter_items(ExportFilter()))
        unpolled = sum(1 for f in store.list_feeds() if f.last_polled is None)
    return len(items), sorted({i["article_status"] for i in items}), unpolled


CASES = [
    pytest.param(["poll", "--once"], "after-claim:1", id="poll-holding-every-feed"),
    pytest.param(["poll", "--once"], "after-poll-commit:1", id="poll-mid-way"),
    pytest.param(["run"], "after-claim:1", id="run-holding-every-feed"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("command", "at"), CASES)
def test_after_sigkill_the_next_poll_stores_everything_at_once(
    http_server: TestServer, store_url: str, tmp_path: Path, command: list[str], at: str
) -> None:
    config = write_config(tmp_path / "feeds.yaml", store_url, serve(http_server, False), False)
    crash(config, command, at)
    assert leased(store_url) >= 1, "the crash should have left feeds leased"

    done = poll_once(config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipped" not in done.stdout, done.stdout
    assert "which is no longer running" in done.stderr, done.stderr[-3000:]
    assert archived(store_url) == (FEEDS * ITEMS, ["off"], 0)
    assert leased(store_url) == 0


@pytest.mark.timeout(300)
def test_after_sigkill_holding_pages_the_next_poll_fetches_them_at_once(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "feeds.yaml", store_url, serve(http_server, True), True)
    crash(config, ["poll", "--once"], "after-article-claim:1")
    items, statuses, _ = archived(store_url)
    assert items == FEEDS * ITEMS and statuses == ["pending"]

    done = poll_once(config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "article pages held by" in done.stderr, done.stderr[-3000:]
    assert archived(store_url) == (FEEDS * ITEMS, ["ok"], 0)
    paths = [f"/news/{n * 100 + i}.html" for n in range(FEEDS) for i in range(ITEMS)]
    assert all(http_server.hits(path) >= 1 for path in paths)


@pytest.mark.timeout(120)
def test_feeds_a_live_process_holds_are_skipped_and_reported(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "feeds.yaml", store_url, serve(http_server, False), False)
    first = poll_once(config)  # makes the archive and polls everything once
    assert first.returncode == 0, first.stderr[-3000:]
    owner = holders.new_owner()  # this test process: alive throughout
    with Store.open(store_url) as store:
        store.hold(owner)
        held = store.claim_due(datetime.now(UTC), 2, owner, 300, datetime.max.replace(tzinfo=UTC))
        assert len(held) == 2
        done = poll_once(config)
    assert done.returncode == 0, done.stderr[-3000:]
    line = f"skipped 2 feeds held by {socket.gethostname()} pid {os.getpid()} (a live process)"
    assert line in done.stdout.splitlines(), done.stdout
    assert "no longer running" not in done.stderr


@pytest.mark.timeout(300)
def test_run_helpers_stop_when_the_main_process_is_killed(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    """``run`` with ``processes: 2``, its main process SIGKILLed: the helper notices, stops and
    releases what it held, so it neither polls on beside the next ``run``'s helpers nor keeps
    feeds from the next ``poll --once``."""
    urls = serve(http_server, False)
    config = write_config(tmp_path / "feeds.yaml", store_url, urls, False, processes=2)
    main = ServiceProcess([sys.executable, "-m", "aggregator", "--config", str(config), "run"])
    try:
        assert wait_until(lambda: main.stderr.count("service started") >= 2), main.stderr[-3000:]
        [helper] = [int(line.split("(pid ")[1].rstrip(")\n")) for line in main.lines
                    if "started helper-1 (pid" in line]  # fmt: skip
        main.kill()
    finally:
        main.kill()
    assert main.proc.returncode == -signal.SIGKILL
    outlived = not wait_until(lambda: holders.start_time(helper) is None)
    if outlived:  # leave no orphan behind the failure
        os.kill(helper, signal.SIGKILL)
    assert not outlived, "the helper outlived its main process"

    done = poll_once(config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipped" not in done.stdout, done.stdout
    assert archived(store_url) == (FEEDS * ITEMS, ["off"], 0)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
