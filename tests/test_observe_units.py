"""The parts of health, metrics, reload and sd_notify that need no running service (issue 15)."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import load_settings
from aggregator.errors import ConfigError
from aggregator.runtime import metrics
from aggregator.runtime.health import Health
from aggregator.runtime.reload import ConfigWatch, reload_settings
from aggregator.runtime.sdnotify import Notifier
from storage.records import STATUS_ERROR
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

# -- sd_notify, on a real unix datagram socket ---------------------------------------------------


def datagram_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock


def test_notifications_arrive_as_datagrams(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with datagram_socket(path) as sock:
        environ = {"NOTIFY_SOCKET": path, "OTHER": "x"}
        notifier = Notifier.take(environ)
        assert environ == {"OTHER": "x"}  # helpers spawned later never see it
        assert notifier.ready("polling") and notifier.watchdog() and notifier.stopping()
        assert notifier.reloading()
        got = [sock.recv(4096).decode() for _ in range(4)]
    assert got[:3] == ["READY=1\nSTATUS=polling", "WATCHDOG=1", "STOPPING=1"]
    assert got[3].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert int(got[3].rpartition("=")[2]) > 0


def test_abstract_socket_names_start_with_at() -> None:
    name = f"aggregator-test-{os.getpid()}"
    with datagram_socket("\0" + name) as sock:
        assert Notifier("@" + name).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_without_socket_or_listener_nothing_is_sent(tmp_path: Path) -> None:
    assert not Notifier.take({}).ready()
    assert not Notifier(str(tmp_path / "nobody-listens")).watchdog()  # an error, not raised


# -- configuration keys --------------------------------------------------------------------------


def config(tmp_path: Path, service: str, feeds: str = "  - url: https://a.example/feed\n") -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(f"database: sqlite:///{tmp_path}/a.db\nservice:\n{service}feeds:\n{feeds}")
    return path


@pytest.mark.parametrize("listen", ["127.0.0.1:8321", "localhost:9", "[::1]:8321"])
def test_loopback_listens_without_token(tmp_path: Path, listen: str) -> None:
    settings = load_settings(config(tmp_path, f"  listen: '{listen}'\n"))
    assert settings.service.listen == listen


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ("  listen: 0.0.0.0:8321\n", "service: listen: 0.0.0.0:8321 is reachable from other "
         "machines: set service.listen_token (a bearer token) or service.listen_public: true"),
        ("  listen: '[::]:1'\n", "is reachable from other machines"),
        ("  listen: example.org:80\n", "is reachable from other machines"),
        ("  listen: 8321\n", "service.listen: expected text"),
        ("  listen: 127.0.0.1\n", "bad listen address '127.0.0.1': use HOST:PORT, e.g. "
         "127.0.0.1:8322"),
        ("  listen: 127.0.0.1:70000\n", "port 70000 is above 65535"),
        ("  listen: 0.0.0.0:1\n  listen_token: short\n", "service.listen_token: "),
    ],
)
def test_exposed_listen_needs_token_or_public(tmp_path: Path, service: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, service))
    assert error in str(caught.value)
    assert str(caught.value).startswith(f"config: {tmp_path / 'feeds.yaml'}:")


@pytest.mark.parametrize("extra", ["  listen_token: 0123456789abcdef0123\n",
                                   "  listen_public: true\n"])
def test_exposed_listen_with_token_or_public(tmp_path: Path, extra: str) -> None:
    assert load_settings(config(tmp_path, "  listen: 0.0.0.0:8321\n" + extra)).service.listen


# -- reload --------------------------------------------------------------------------------------


def test_watch_sees_new_content_once_and_ignores_a_touch(tmp_path: Path) -> None:
    path = config(tmp_path, "  tick: 1s\n")
    watch = ConfigWatch(path)
    assert not watch.changed()
    os.utime(path, ns=(1, 1))  # same bytes, another mtime: nothing to reload
    assert not watch.changed()
    path.write_text(path.read_text().replace("1s", "2s"))
    assert not watch.changed()  # moved since the last look: perhaps still being written
    assert watch.changed()  # held still: read, and new
    assert not watch.changed()  # reported once, whether the reload then succeeds or not
    path.unlink()
    assert not watch.changed()


def test_reload_summarizes_and_keeps_restart_only_keys(tmp_path: Path) -> None:
    feeds = "  - url: https://a.example/feed\n  - url: https://b.example/feed\n"
    running = load_settings(config(tmp_path, "  tick: 1s\n  processes: 1\n", feeds))
    new_feeds = ("  - url: https://a.example/feed\n    interval: 2h\n"
                 "  - url: https://c.example/feed\n  - url: https://d.example/feed\n")
    path = config(tmp_path, "  tick: 3s\n  processes: 2\n  event_loop: asyncio\n"
                  "  listen: 127.0.0.1:9\n", new_feeds)
    reloaded, from_file = reload_settings(path, running)
    assert reloaded.summary == "2 feeds added, 1 removed, 1 changed; other settings changed"
    assert reloaded.kept == ("service.processes", "service.event_loop", "service.listen")
    assert reloaded.settings.service.tick == 3.0
    assert reloaded.settings.service.processes == 1 and reloaded.settings.service.listen is None
    assert reloaded.settings.service.event_loop == "auto"  # the loop runs on: a restart's
    assert from_file.service.processes == 2
    # The next reload compares the file with the file: nothing new to warn about.
    again, _ = reload_settings(path, reloaded.settings, from_file)
    assert again.kept == () and again.summary.startswith("0 feeds added, 0 removed, 0 changed")


def test_invalid_new_file_is_refused_with_its_errors(tmp_path: Path) -> None:
    running = load_settings(config(tmp_path, "  tick: 1s\n"))
    path = config(tmp_path, "  tick: soon\n  concurency: 3\n")
    with pytest.raises(ConfigError) as caught:
        reload_settings(path, running)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and "service.tick: invalid duration 'soon'" in lines[0]
    assert "service.concurency: unknown key; did you mean `concurrency`?" in lines[1]


# -- metrics in this process (its own registry: no multiprocess files) -------------------------


def sample(text: str, line: str) -> float:
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rpartition(" ")[2])
    raise AssertionError(f"{line} not in:\n{text}")


def test_recorder_counts_what_it_is_told() -> None:
    rec = metrics.PromRecorder("main")
    rec.poll("ok", 200, 3, 0.2)
    rec.poll("not_modified", 304, 0, 0.01)
    rec.poll("error", None, 0, 12.0)
    rec.page("ok", 0.3)
    rec.page("gave_up", 1.0)
    for size in (1, 5, 64):
        rec.batch(size)
    rec.takeovers(2)
    rec.reload(True)
    rec.reload(False)
    assert "aggregator_polls_total{" not in metrics.exposition(rec, None, None).decode()
    rec.flush()  # counters are written once per tick (or before a scrape)
    gauges = metrics.ArchiveGauges(4096, 3, 1, 120.5, 0.5)
    text = metrics.exposition(rec, None, gauges).decode()
    assert sample(text, 'aggregator_polls_total{http_status="200",result="ok"}') == 1
    assert sample(text, 'aggregator_polls_total{http_status="none",result="error"}') == 1
    assert sample(text, "aggregator_items_stored_total") == 3
    assert sample(text, 'aggregator_articles_total{outcome="gave_up"}') == 1
    assert sample(text, 'aggregator_poll_duration_seconds_bucket{le="0.25"}') == 2
    assert sample(text, "aggregator_poll_duration_seconds_count") == 3
    assert sample(text, 'aggregator_write_batch_size_bucket{le="4.0"}') == 1
    assert sample(text, "aggregator_write_batch_size_sum") == 70
    assert sample(text, "aggregator_lease_takeovers_total") == 2
    assert sample(text, "aggregator_config_reload_failures_total") == 1
    assert sample(text, 'aggregator_process_resident_memory_bytes{process="main"}') > 1e6
    assert sample(text, "aggregator_database_size_bytes") == 4096
    assert sample(text, "aggregator_feeds_overdue") == 1
    assert sample(text, "aggregator_oldest_successful_poll_age_seconds") == 120.5
    assert "aggregator_database_size_bytes" not in metrics.exposition(rec, None, None).decode()


def test_the_base_recorder_records_nothing() -> None:
    rec = metrics.Recorder()
    rec.poll("ok", 200, 1, 0.1)
    rec.tick()
    assert not hasattr(rec, "registry")


# -- health --------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_wants_a_recent_tick_and_a_database_that_answers() -> None:
    clock = Clock()
    failing: list[Exception] = []

    def probe(timeout: float) -> None:
        assert timeout == 1.0
        if failing:
            raise failing[0]

    health = Health(2.0, probe, clock)
    assert asyncio.run(health.problem()) == "starting: the dispatch tick has not run yet"
    health.beat()
    clock.now += health.stale_after
    assert asyncio.run(health.problem()) is None
    failing.append(RuntimeError("database is locked"))
    assert asyncio.run(health.problem()) == ("database: cannot write within 1s (database is "
                                             "locked)")
    clock.now += 1
    assert asyncio.run(health.problem()) == "dispatch tick: last ran 37s ago (limit 36s)"


# -- the archive's vital signs, on both databases ------------------------------------------------


def test_vitals_count_overdue_feeds_and_the_stalest_good_poll(store: Store) -> None:
    from storage.records import FeedConfig

    urls = [f"https://f{i}.example/feed" for i in range(3)]
    store.sync_feeds([FeedConfig(url=u, interval=600.0) for u in urls], T0)
    poll(store, urls[0], T0, [entry(1)], next_check=T0 + timedelta(minutes=10), interval=600.0)
    later = T0 + timedelta(hours=1)
    poll(store, urls[1], T0, [], next_check=later, interval=600.0)
    poll(store, urls[1], later, [], status=STATUS_ERROR, error="x", next_check=later,
         interval=600.0)
    now = T0 + timedelta(hours=1, minutes=5)
    vitals = store.vitals(now)
    assert vitals.feeds_active == 3
    # f0: due at 12:10, interval 10 min, now 13:05: overdue. f1: due 13:00: late but within one
    # interval. f2: never polled, due at 12:00 (created): overdue.
    assert vitals.feeds_overdue == 2
    assert vitals.oldest_success == T0  # f0's and f1's good polls, f2's creation
    assert vitals.database_bytes and vitals.database_bytes > 10_000
    store.probe(1.0)


def test_claims_count_the_leases_they_take_over(store: Store) -> None:
    from storage.records import FeedConfig

    urls = [f"https://t{i}.example/feed" for i in range(3)]
    store.sync_feeds([FeedConfig(url=u) for u in urls], T0)
    assert len(store.claim_due(T0, 2, "gone-owner", 60)) == 2  # its leases expire at T0 + 60 s
    assert store.leases_taken_over == 0
    assert len(store.claim_due(T0 + timedelta(seconds=30), 5, "me", 60)) == 1  # the free one
    assert store.leases_taken_over == 0
    assert len(store.claim_due(T0 + timedelta(seconds=120), 5, "me", 60)) == 3
    assert store.leases_taken_over == 2  # "gone-owner"'s expired two; our own one is not counted


def test_an_emptied_file_is_refused(tmp_path: Path) -> None:
    running = load_settings(config(tmp_path, "  tick: 1s\n"))
    path = tmp_path / "feeds.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match="lists no feeds; the running ones stay"):
        reload_settings(path, running)


def test_mounted_app_is_served_under_the_same_token_rule() -> None:
    """The seam for the web view: an ASGI app mounted beside the endpoints, on a real socket."""
    import urllib.error
    import urllib.request

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from aggregator.runtime.health import Endpoint, bind, build_app

    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("hello from the web view")

    web = Starlette(routes=[Route("/hello", hello)])
    health = Health(1.0, lambda timeout: None)
    health.beat()

    async def no_metrics() -> bytes:
        return b""

    def get(url: str, token: str | None) -> tuple[int, str]:
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""

    async def scenario() -> list[tuple[int, str]]:
        endpoint = Endpoint(build_app(health, no_metrics, "t" * 16, [("/web", web)]),
                            bind("127.0.0.1:0"))
        await endpoint.start()
        base = f"http://{endpoint.address}"
        try:
            return [await asyncio.to_thread(get, base + path, token) for path, token in
                    [("/web/hello", None), ("/web/hello", "t" * 16), ("/healthz", "t" * 16)]]
        finally:
            await endpoint.stop()

    assert asyncio.run(scenario()) == [(401, ""), (200, "hello from the web view"),
                                       (200, '{"status": "ok"}\n')]
