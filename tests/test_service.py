"""The service as users run it: a subprocess that polls, stops on SIGTERM, resumes on restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.records import ExportFilter
from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import TestServer
from tests.serviceproc import ServiceProcess

ROOT = Path(__file__).parent.parent


def write_config(tmp_path: Path, database: str, *urls: str, interval: str = "1h") -> Path:
    feeds = "\n".join(f"  - url: {url}\n    interval: {interval}" for url in urls)
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        "defaults:\n  fetch_articles: false\n  min_interval: 1s\n"
        "service:\n  tick: 0.2s\n"
        f"feeds:\n{feeds}\n",
        encoding="utf-8",
    )
    return path


def aggregator(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator", *args]


class Running(ServiceProcess):
    """``aggregator run`` on ``config``, once it has said it started."""

    def __init__(self, config: Path) -> None:
        super().__init__(aggregator("--config", str(config), "run"))
        wait_for(self.started)

    def stop(self) -> str:
        code = self.terminate(timeout=30)
        assert code == 0, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        return self.stderr


def start(config: Path) -> Running:
    return Running(config)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def stop(service: Running) -> str:
    return service.stop()


def count_items(url: str) -> int:
    store = Store.open(url)
    try:
        return sum(1 for _ in store.iter_items(ExportFilter()))
    finally:
        store.close()


@pytest.mark.timeout(180)
def test_service_polls_stops_cleanly_and_resumes(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    base = http_server.base_url
    http_server.route("/a.xml", body=rss([Item(n, base) for n in (1, 2, 3)]), etag='"a1"')
    http_server.route("/b.xml", status=500)
    config = write_config(tmp_path, store_url, http_server.url("/a.xml"), http_server.url("/b.xml"))

    proc = start(config)
    try:
        wait_for(lambda: http_server.hits("/a.xml") >= 1 and http_server.hits("/b.xml") >= 1)
        wait_for(lambda: count_items(store_url) == 3)
    finally:
        stderr = stop(proc)
    assert "service started" in stderr

    # After a restart it carries on where the database says: nothing is due for an hour,
    # except the failing feed's back-off, which is at least a minute.
    hits = http_server.hits("/a.xml")
    proc = start(config)
    try:
        time.sleep(2)
        assert http_server.hits("/a.xml") == hits
    finally:
        stop(proc)
    assert count_items(store_url) == 3


@pytest.mark.timeout(120)
def test_sigterm_during_slow_polls_leaves_no_partial_write(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    http_server.route("/slow.xml", body=rss([Item(1, http_server.base_url)]), delay=30)
    config = write_config(tmp_path, store_url, http_server.url("/slow.xml"))
    proc = start(config)
    try:
        wait_for(lambda: http_server.hits("/slow.xml") >= 1)
    finally:
        started = time.monotonic()
        stop(proc)
    assert time.monotonic() - started < 25  # abandoned after the grace period, not waited out
    assert count_items(store_url) == 0
    store = Store.open(store_url)
    try:
        (feed,) = store.list_feeds()
        assert feed.last_polled is None  # the abandoned poll wrote nothing
    finally:
        store.close()


def test_cli_poll_once_summary_and_exit_status(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    http_server.route("/a.xml", body=rss([Item(1, http_server.base_url)]))
    http_server.route("/gone.xml", status=404)
    config = write_config(tmp_path, store_url, http_server.url("/a.xml"),
                          http_server.url("/gone.xml"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(aggregator("--config", str(config), "poll", "--once"), cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "feeds: 1 ok, 0 not modified, 1 failed; 1 new items" in done.stdout
    listed = subprocess.run(aggregator("--config", str(config), "feeds", "--json"), cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    rows = {row["url"]: row for row in json.loads(listed.stdout)}
    assert rows[http_server.url("/gone.xml")]["last_http_status"] == 404
    assert rows[http_server.url("/a.xml")]["item_count"] == 1
    assert rows[http_server.url("/a.xml")]["next_reason"]
