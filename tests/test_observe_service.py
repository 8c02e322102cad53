"""Health, metrics, reload and sd_notify on the real service: ``aggregator run`` as a subprocess,
scraped over HTTP, its configuration edited under it, its systemd socket a real one (issue 15)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import RecordedRequest, Route, TestServer
from tests.serviceproc import ServiceProcess
from tests.test_service import wait_for

TOKEN = "s3cret-token-of-twenty"


def write_config(path: Path, database: str, feeds: list[str], *, service: str = "",
                 extra: str = "") -> Path:  # fmt: skip
    """Feeds given as YAML items (``url: …`` lines); the service listens on a free port."""
    listed = "".join(f"  - {feed}\n" for feed in feeds)
    path.write_text(
        f"database: {json.dumps(database)}\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        "defaults:\n  fetch_articles: false\n  min_interval: 1s\n  interval: 1h\n"
        f"service:\n  tick: 0.2s\n  listen: 127.0.0.1:0\n{service}{extra}"
        f"feeds:\n{listed}",
        encoding="utf-8",
    )
    return path


class Service(ServiceProcess):
    """``aggregator run``; ``base`` is where its endpoint listens, read from its log."""

    def __init__(self, config: Path, env: dict[str, str | None] | None = None) -> None:
        super().__init__([sys.executable, "-m", "aggregator", "--config", str(config), "run"], env)
        wait_for(lambda: "serving /healthz" in self.stderr or self.proc.poll() is not None)
        found = re.search(r"serving /healthz and /metrics on (http://\S+)", self.stderr)
        assert found, self.stderr
        self.base = found[1]

    def get(self, path: str, token: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metric(self, name: str, token: str | None = None) -> float:
        """The sum of every series of ``name`` (a full name with labels picks one series)."""
        _, text = self.get("/metrics", token)
        total, seen = 0.0, False
        for line in text.splitlines():
            series = line.rpartition(" ")[0]
            if series == name or series.startswith(name + "{"):
                total += float(line.rpartition(" ")[2])
                seen = True
        return total if seen else -1.0

    def stop(self) -> str:
        try:
            code = self.terminate(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("no exit 60 s after SIGTERM:\n" + self.stderr[-5000:]) from None
        assert code == 0, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        return self.stderr


def memory(service: Service) -> list[tuple[str, str, str]]:
    """(pid, process, bytes) of each process's memory series."""
    _, text = service.get("/metrics")
    return re.findall(r'aggregator_process_resident_memory_bytes\{pid="(\d+)",'
                      r'process="([\w-]+)"\} (\S+)', text)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("processes", [1, 2])
def test_metrics_count_what_the_feed_server_served(
    http_server: TestServer, store_url: str, tmp_path: Path, processes: int
) -> None:
    """On both databases, with and without a helper process."""
    base = http_server.base_url
    sizes = {f"/f{n}.xml": n + 1 for n in range(6)}  # 1 + 2 + … + 6 = 21 items
    for path, size in sizes.items():
        http_server.route(path, body=rss([Item(100 * size + k, base) for k in range(size)]))
    http_server.route("/broken.xml", status=500)
    feeds = [f"url: {http_server.url(p)}" for p in [*sizes, "/broken.xml"]]
    config = write_config(tmp_path / "feeds.yaml", store_url, feeds,
                          service=f"  processes: {processes}\n")
    service = Service(config)
    try:
        wait_for(lambda: service.metric("aggregator_polls_total") == 7)
        assert sum(http_server.hits(p) for p in [*sizes, "/broken.xml"]) == 7
        assert service.metric('aggregator_polls_total{http_status="200",result="ok"}') == 6
        assert service.metric('aggregator_polls_total{http_status="500",result="error"}') == 1
        assert service.metric("aggregator_items_stored_total") == sum(sizes.values())
        assert service.metric("aggregator_poll_duration_seconds_count") == 7
        assert service.metric("aggregator_write_batch_size_sum") == 7  # every result, once
        assert service.metric("aggregator_feeds_active") == 7
        assert service.metric("aggregator_feeds_overdue") == 0
        assert service.metric("aggregator_database_size_bytes") > 50_000
        assert 0 <= service.metric("aggregator_oldest_successful_poll_age_seconds") < 600
        assert service.metric("aggregator_lease_takeovers_total") == 0
        expected = ["helper-1", "main"] if processes == 2 else ["main"]
        wait_for(lambda: sorted(name for _, name, _ in memory(service)) == expected)
        assert all(float(value) > 10e6 for _, _, value in memory(service))
        assert service.get("/healthz") == (200, '{"status": "ok"}\n')
    finally:
        service.stop()


@pytest.mark.timeout(180)
def test_a_wedged_database_turns_healthz_503(
    http_server: TestServer, sqlite_url: str, tmp_path: Path
) -> None:
    http_server.route("/a.xml", body=rss([Item(1, http_server.base_url)]))
    feed = f"url: {http_server.url('/a.xml')}"
    config = write_config(tmp_path / "feeds.yaml", sqlite_url, [feed])
    service = Service(config)
    try:
        wait_for(lambda: service.get("/healthz")[0] == 200)
        wedge = sqlite3.connect(tmp_path / "archive.db", isolation_level=None)
        try:
            wedge.execute("BEGIN IMMEDIATE")  # the write lock, held longer than the check
            status, body = service.get("/healthz")
        finally:
            wedge.execute("ROLLBACK")
            wedge.close()
        assert status == 503
        assert body.count("\n") == 1
        reason = json.loads(body)
        assert reason["status"] == "unhealthy"
        assert reason["reason"].startswith("database: cannot write within 1s (")
        assert "locked" in reason["reason"]
        wait_for(lambda: service.get("/healthz")[0] == 200)
    finally:
        service.stop()


@pytest.mark.timeout(120)
def test_token_is_required_when_set(http_server: TestServer, sqlite_url: str,
                                    tmp_path: Path) -> None:  # fmt: skip
    http_server.route("/a.xml", body=rss([Item(1, http_server.base_url)]))
    feed = f"url: {http_server.url('/a.xml')}"
    config = write_config(tmp_path / "feeds.yaml", sqlite_url, [feed],
                          extra=f"  listen_token: {TOKEN}\n")
    service = Service(config)
    try:
        assert service.get("/metrics")[0] == 401
        assert service.get("/healthz", "wrong-token-of-twenty-chars")[0] == 401
        wait_for(lambda: service.get("/healthz", TOKEN)[0] == 200)
        assert service.get("/metrics", TOKEN)[0] == 200
    finally:
        service.stop()


class Systemd:
    """The receiving end of $NOTIFY_SOCKET: a thread keeps every datagram, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.states: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.sock.recv(4096):
                self.states.append(data.decode())

    def seen(self, state: str) -> int:
        return sum(1 for s in list(self.states) if state in s.splitlines())

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def feed_row(database: str, url: str) -> tuple[bool, str | None]:
    """(active, title) of the feed's row."""
    with Store.open(database) as store:
        feed = store.get_feed(url)
        assert feed is not None
        return feed.active, feed.title


@pytest.mark.timeout(240)
def test_reload_follows_the_edited_file_and_sighup(
    http_server: TestServer, sqlite_url: str, tmp_path: Path
) -> None:
    base = http_server.base_url
    served = iter(range(1000, 100_000))

    def fresh(_request: RecordedRequest) -> Route:  # a new story at every poll
        return Route(body=rss([Item(next(served), base)]))

    for name in "acd":
        http_server.route(f"/{name}.xml", body=rss([Item(ord(name), base)]))
    http_server.route("/b.xml", handler=fresh)
    url = {name: http_server.url(f"/{name}.xml") for name in "abcd"}
    path = tmp_path / "feeds.yaml"
    every_second = "\n    interval: 1s"
    write_config(path, sqlite_url, [f"url: {url['a']}", f"url: {url['b']}{every_second}",
                                    f"url: {url['d']}{every_second}"], service="  processes: 2\n")

    def pages() -> int:
        return sum(1 for r in list(http_server.requests) if r.path.startswith("/news/"))

    systemd = Systemd(tmp_path / "notify")
    service = Service(path, env={"NOTIFY_SOCKET": str(systemd.path)})
    try:
        wait_for(lambda: systemd.seen("READY=1") == 1 and systemd.seen("WATCHDOG=1") >= 2)
        wait_for(lambda: http_server.hits("/b.xml") >= 2 and http_server.hits("/d.xml") >= 2)
        assert pages() == 0  # fetch_articles is off

        # Edited: c added, d removed, b fetches its articles now, a gets a title.
        write_config(path, sqlite_url, [f"url: {url['a']}\n    title: Renamed",
                                        f"url: {url['b']}{every_second}\n"
                                        "    fetch_articles: true", f"url: {url['c']}"],
                     service="  processes: 2\n")  # fmt: skip
        wait_for(lambda: systemd.seen("READY=1") == 2)  # reloaded
        assert systemd.seen("RELOADING=1") == 1
        d_hits = http_server.hits("/d.xml")
        wait_for(lambda: http_server.hits("/c.xml") >= 1)  # scheduled at once
        wait_for(lambda: pages() >= 2)  # from b's next polls on
        reloaded = "configuration reloaded: 1 feeds added, 1 removed, 2 changed"
        wait_for(lambda: service.stderr.count(reloaded) == 2)  # the helper followed
        assert f"[helper-1] aggregator.runtime.daemon: {reloaded}" in service.stderr
        assert feed_row(sqlite_url, url["d"])[0] is False  # kept, not polled
        assert feed_row(sqlite_url, url["a"]) == (True, "Renamed")
        assert service.metric("aggregator_config_reloads_total") == 1
        # A page the server answered may still be on its way to the metric: wait for both.
        wait_for(lambda: service.metric('aggregator_articles_total{outcome="retry"}') >= 2)

        # Invalid: refused with its errors; the old configuration keeps running.
        text = path.read_text()
        path.write_text(text.replace("tick: 0.2s", "tick: soon"))
        wait_for(lambda: service.metric("aggregator_config_reload_failures_total") == 1)
        assert "reload refused, the running configuration stays" in service.stderr
        assert "service.tick: invalid duration 'soon'" in service.stderr
        assert service.get("/healthz")[0] == 200
        b_hits = http_server.hits("/b.xml")
        wait_for(lambda: http_server.hits("/b.xml") > b_hits)  # still polling

        # SIGHUP re-reads a file whose size and mtime did not move, which the watch cannot
        # see: only the signal brings the new title.
        stat = path.stat()
        path.write_text(text.replace("Renamed", "Renamer"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        service.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: service.metric("aggregator_config_reloads_total") == 2)
        assert feed_row(sqlite_url, url["a"]) == (True, "Renamer")
        assert http_server.hits("/d.xml") <= d_hits + 1  # one poll may have been in flight
    finally:
        stderr = service.stop()
    wait_for(lambda: systemd.seen("STOPPING=1") == 1)
    systemd.close()
    assert "takes effect at the next restart" not in stderr


@pytest.mark.timeout(120)
def test_a_taken_port_stops_the_start_in_one_line(sqlite_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "feeds.yaml", sqlite_url, ["url: https://a.example/f"])
        config.write_text(config.read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}"))
        done = subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "run"],
                              capture_output=True, text=True, timeout=100, check=False,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"config: service.listen: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in done.stderr
