"""The daemon's hook point (``Daemon.on_tick``, ``DaemonState``): what a health endpoint or a
config reload builds on, exercised in process against a real server and store."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from aggregator.runtime.daemon import Daemon, DaemonState
from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import TestServer
from tests.test_poll import items_of, settings_for


@pytest.mark.timeout(60)
def test_tick_hooks_see_the_state_and_a_failing_hook_stops_nothing(
    http_server: TestServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.route("/feed.xml", body=rss([Item(n, http_server.base_url) for n in (1, 2)]))
    settings = settings_for(http_server.url("/feed.xml"), service={"tick": 0.05})
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
    daemon = Daemon(settings, store)
    stop = asyncio.Event()
    seen: list[tuple[int, int]] = []

    def broken(state: DaemonState) -> None:
        raise RuntimeError("a hook's own bug")

    def watch(state: DaemonState) -> None:
        assert state.worker is not None and state.last_tick is not None
        seen.append((state.ticks, state.totals.ok))
        if state.totals.ok and state.ticks >= 3:
            stop.set()

    daemon.on_tick += [broken, watch]
    with caplog.at_level(logging.ERROR, logger="aggregator.runtime.daemon"):
        totals = asyncio.run(daemon.run(stop))
    assert (totals.ok, totals.failed, totals.new_items) == (1, 0, 2)
    assert [ticks for ticks, _ in seen] == list(range(1, len(seen) + 1))  # every tick, in order
    assert daemon.state.stopping and daemon.state.fatal is None
    assert sum("tick hook" in m for m in caplog.messages) == len(seen)
    assert len(items_of(store)) == 2
