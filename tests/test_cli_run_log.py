"""What ``aggregator run`` tells an operator at the default level (issue 13): one line per poll
that brought items or failed (with the back-off and the next time), the start, the stop and the
polls a stop abandons; the scheduler's and the migrations' chatter only from ``-v``.

The service runs as a process (as installed) against a local feed server; its lines are checked
with the timestamps and the times ahead masked."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.feedgen import Item, rss
from tests.httpserver import TestServer, accept_and_hang
from tests.serviceproc import ServiceProcess
from tests.test_cli_newcomer import write

HTTP = ("http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        "  timeout: 10m\n")  # fmt: skip


def service_config(tmp_path: Path, *urls: str) -> str:
    feeds = "".join(f"  - url: {url}\n    interval: 5m\n" for url in urls)
    return write(tmp_path / "feeds.yaml", (
        f"database: sqlite:///{tmp_path / 'a.db'}\n{HTTP}service:\n  tick: 1\n"
        f"defaults:\n  fetch_articles: false\nfeeds:\n{feeds}"))


def wait_for(condition: Callable[[], bool], what: str, service: ServiceProcess) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert service.proc.poll() is None, service.stderr
        assert time.monotonic() < deadline, f"no {what} in 60s:\n{service.stderr}"
        time.sleep(0.05)


def polled(tmp_path: Path) -> int:
    """Feeds whose poll is written (the archive is read beside the running service: WAL)."""
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as db:
        return int(db.execute("SELECT count(*) FROM feeds WHERE last_polled IS NOT NULL")
                   .fetchone()[0])  # fmt: skip


def masked(lines: list[str], base: str) -> list[str]:
    """The lines without their timestamps; BASE for the server, IN and AT for times ahead."""
    out = []
    for line in lines:
        line = re.sub(r"^\d{4}-\d\d-\d\d [\d:,]+ ", "", line.rstrip("\n")).replace(base, "BASE")
        line = re.sub(r"in \d+[dhms]( \d+[dhms])? \(([\d-]+ )?[\d:]+Z\)", "IN (AT)", line)
        out.append(re.sub(r"\(\S+ pid \d+\)", "(HOST pid N)", line))
    return out


def run_service(cfg: str, *options: str) -> ServiceProcess:
    return ServiceProcess([sys.executable, "-m", "aggregator", *options, "run", "-c", cfg],
                          env={"AGGREGATOR_CONFIG": None, "AGGREGATOR_DATABASE": None})


def test_run_says_what_an_operator_wants(tmp_path: Path, http_server: TestServer) -> None:
    base = http_server.base_url
    http_server.route("/a.xml", body=rss([Item(n, base) for n in (1, 2)]))
    http_server.route("/b.xml", status=500, body=b"down")
    http_server.route("/c.xml", status=304)
    http_server.raw("/slow.xml", accept_and_hang)
    urls = [http_server.url(f"/{name}.xml") for name in ("a", "b", "c", "slow")]
    service = run_service(service_config(tmp_path, *urls))
    try:
        wait_for(lambda: service.stderr.count("aggregator.polls") >= 2, "poll lines", service)
        wait_for(lambda: polled(tmp_path) == 3 and http_server.hits("/slow.xml") >= 1,
                 "the 304 written and the slow feed asked", service)  # fmt: skip
    finally:
        code = service.terminate()
        http_server.close()
    lines = masked(service.lines, base)
    assert code == 0
    assert lines[0] == (f"INFO aggregator.runtime.daemon: service started (HOST pid N): 4 feeds, "
                        f"database sqlite:///{tmp_path / 'a.db'}")
    assert sorted(lines[1:3]) == [
        "INFO aggregator.polls: poll BASE/a.xml: 2 new, 0 changed (HTTP 200); next poll IN (AT)",
        "WARNING aggregator.polls: poll BASE/b.xml failed: fetch: HTTP 500 for BASE/b.xml; next "
        "poll IN (AT): backing off after 1 error",
    ]
    assert lines[3:] == [
        "INFO aggregator.runtime.daemon: stopping: no new polls; waiting up to 10s for 1 in "
        "flight",
        "WARNING aggregator.runtime.worker: stopping: abandoned poll BASE/slow.xml after 10s: "
        "nothing of it is written; it is due again at the next start",
        "INFO aggregator: stopped",
    ], "the 304 says nothing; no scheduler or migration chatter"


def test_scheduler_and_migrations_speak_from_v(tmp_path: Path, http_server: TestServer) -> None:
    http_server.route("/a.xml", body=rss([Item(1, http_server.base_url)]))
    service = run_service(service_config(tmp_path, http_server.url("/a.xml")), "-v")
    try:
        wait_for(lambda: "aggregator.polls" in service.stderr, "poll line", service)
    finally:
        assert service.terminate() == 0
    assert "INFO alembic.runtime.migration: Running upgrade  -> 0001" in service.stderr
    assert "INFO apscheduler.scheduler: Scheduler started" in service.stderr
