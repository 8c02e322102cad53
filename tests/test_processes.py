"""service.processes: helper processes poll beside the main one, each feed once, nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aggregator.runtime.oneshot import OneShot
from storage.store import Store
from tests.feedgen import Item, article_page, rss
from tests.httpserver import RecordedRequest, Route, TestServer
from tests.test_poll import items_of, settings_for
from tests.test_service import Running, count_items, wait_for, write_config


class _InFlightGate:
    """Holds page answers until ``count`` requests are in flight at once (or 60 s pass), so
    that the test does not depend on how fast a helper process starts on a loaded machine."""

    def __init__(self, count: int) -> None:
        self.count, self.in_flight, self.opened = count, 0, False
        self.cond = threading.Condition()

    def holding(self, page: Route) -> Callable[[RecordedRequest], Route]:
        def handler(_req: RecordedRequest) -> Route:
            with self.cond:
                self.in_flight += 1
                self.opened = self.opened or self.in_flight >= self.count
                self.cond.notify_all()
                self.cond.wait_for(lambda: self.opened, timeout=60)
                self.in_flight -= 1
            return page

        return handler


def feeds_on(server: TestServer, count: int, items: int = 3, delay: float = 0.0,
             gate: _InFlightGate | None = None) -> list[str]:
    base = server.base_url
    urls = []
    for n in range(count):
        path = f"/f{n}.xml"
        body = rss([Item(n * 100 + i, base) for i in range(items)])
        route = Route(body=body, etag=f'"f{n}"', delay=delay)
        if gate is None:
            server.route(path, **vars(route))
        else:
            server.route(path, handler=gate.holding(route))
        urls.append(server.url(path))
    return urls


@pytest.mark.timeout(120)
def test_poll_once_deals_feeds_to_helpers_each_once(http_server: TestServer, store: Store) -> None:
    # The main process has 2 slots: a third request in flight is the helper's, however slowly
    # it starts on a loaded machine.
    urls = feeds_on(http_server, 24, gate=_InFlightGate(3))
    settings = settings_for(*urls, database=store.url, service={"processes": 2, "concurrency": 2},
                            http={"timeout": 90})  # the main process's polls wait at the gate
    store.sync_feeds(settings.feed_configs(), _now())
    service = OneShot(settings, store)
    try:
        first = asyncio.run(service.poll_once())
        assert service.dealer.crew is not None
        procs = list(service.dealer.crew.procs)
        helpers = [p.pid for p in procs]
        helped = service.dealer.crew.done
        assert (first.ok, first.failed, first.new_items) == (24, 0, 72)
        assert 0 < helped < 24, "both processes should have polled"
        assert [http_server.hits(f"/f{n}.xml") for n in range(24)] == [1] * 24
        assert len(items_of(store)) == 72

        service.totals = type(first)()
        second = asyncio.run(service.poll_once())
        assert (second.not_modified, second.new_items) == (24, 0)
        assert [p.pid for p in service.dealer.crew.procs] == helpers  # the same helpers, kept
    finally:
        service.close()
    assert not any(p.is_alive() for p in procs)
    assert len(items_of(store)) == 72


@pytest.mark.timeout(120)
def test_article_pages_are_dealt_to_helpers_too(http_server: TestServer, store: Store) -> None:
    base = http_server.base_url
    items = [Item(n, base) for n in range(1, 13)]
    http_server.route("/feed.xml", body=rss(items))
    gate = _InFlightGate(3)  # the main process has 2 slots: a third request is the helper's
    for item in items:
        page = Route(body=article_page(item), headers={"Content-Type": "text/html; charset=utf-8"})
        http_server.route(f"/news/{item.n}.html", handler=gate.holding(page))
    settings = settings_for(http_server.url("/feed.xml"), database=store.url,
                            fetch_articles=True, service={"processes": 2, "concurrency": 2},
                            http={"timeout": 90})  # the main process's pages wait at the gate
    store.sync_feeds(settings.feed_configs(), _now())
    service = OneShot(settings, store)
    try:
        totals = asyncio.run(service.poll_once())
        assert service.dealer.crew is not None
        helped = service.dealer.crew.done
    finally:
        service.close()
    assert (totals.new_items, totals.articles_ok, totals.articles_failed) == (12, 12, 0)
    assert 0 < helped < 12, "both processes should have fetched pages"
    assert [http_server.hits(f"/news/{n}.html") for n in range(1, 13)] == [1] * 12
    texts = [i["article"]["text"] for i in items_of(store)]
    assert all(t.startswith("Paragraph 1 of story") for t in texts)


@pytest.mark.timeout(120)
def test_a_helper_that_dies_is_reported_and_the_rest_is_done(
    http_server: TestServer, store: Store
) -> None:
    urls = feeds_on(http_server, 8, delay=1.0)
    settings = settings_for(*urls, database=store.url, service={"processes": 2, "concurrency": 1})
    store.sync_feeds(settings.feed_configs(), _now())
    service = OneShot(settings, store)

    def kill_the_helper() -> None:
        while service.dealer.crew is None or service.dealer.crew.done < 1:  # it has polled one feed
            time.sleep(0.02)
        time.sleep(0.5)  # and is in the middle of its next, slow, fetch
        pid = service.dealer.crew.procs[0].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_helper)
    killer.start()
    try:
        totals = asyncio.run(service.poll_once())
    finally:
        killer.join()
        service.close()
    assert totals.ok + totals.failed == 8
    assert totals.failed >= 1
    assert any("helper process died" in e for e in totals.errors)
    polled = sum(1 for f in store.list_feeds() if f.last_polled is not None)
    assert polled == totals.ok  # what was lost was not written; the rest was
    # Nothing is left leased to the run: the lost feeds are claimable again at once.
    assert len(store.claim_due(_now(), 100, "next-run", 300)) == 8 - polled


@pytest.mark.timeout(180)
def test_run_with_helper_processes_stops_them_all(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    urls = feeds_on(http_server, 6)
    config = write_config(tmp_path, store_url, *urls)
    text = config.read_text().replace("service:\n  tick: 0.2s\n",
                                      "service:\n  tick: 0.2s\n  processes: 2\n")
    config.write_text(text)
    proc = Running(config)
    try:
        wait_for(lambda: count_items(store_url) == 18)
        children = _children(proc.proc.pid)
        assert len(children) >= 1, "a helper process should run beside the main one"
    finally:
        stderr = proc.stop()
    assert "started helper-1" in stderr
    assert [http_server.hits(f"/f{n}.xml") for n in range(6)] == [1] * 6
    # multiprocessing's resource tracker leaves once it reads its pipe's end: give it a moment.
    wait_for(lambda: not [pid for pid in children if _alive(pid)], timeout=10)
    with Store.open(store_url) as store:
        assert count_items(store_url) == 18
        assert all(f.next_check is not None for f in store.list_feeds())


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)
