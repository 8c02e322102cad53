"""Feeds that grow, with a cut-off: the benchmark feed server's catalog, served from a thread here.

It reuses :mod:`benchmarks.feedserver` (catalog, HTTP protocol, listeners on 127.42.0.x) and adds
what a crash test needs and that server lacks: ``freeze()`` stops the growth and says exactly
which entries were published, so a test can check that every one of them reached the archive.
A feed starts with a few entries and shows at most its newest ``entries``; the test must finish
before that window slides past anything (``freeze`` refuses to answer otherwise, since such
entries might never have been fetched).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import threading
import time
from concurrent.futures import Future

from benchmarks.feedserver import (
    App,
    Catalog,
    Rendered,
    ServerSpec,
    feed_urls,
    host_of,
    listen,
    render_item,
)

INITIAL = 5  # entries a feed shows at first; it grows to ``spec.entries``, then slides


class FreezableCatalog(Catalog):
    """Feeds that start short (so every entry stays visible for ``entries - INITIAL`` steps, not
    just the first one) and stop growing at ``frozen_at``: later requests see that generation."""

    frozen_at: float | None = None
    items: dict[tuple[int, int], str] | None = None  # rendered once each: growth stays cheap

    def generation(self, feed: int, now: float) -> int:
        if self.frozen_at is not None:
            now = min(now, self.frozen_at)
        return super().generation(feed, now)

    def newest(self, gen: int) -> int:
        return INITIAL - 1 + gen

    def _render(self, feed: int, gen: int) -> Rendered:
        newest = self.newest(gen)
        count = min(self.spec.entries, newest + 1)
        base = f"http://{host_of(self.spec, feed)}:{self.port}"
        items = "".join(self.item(base, feed, seq) for seq in range(newest, newest - count, -1))
        plain = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Growing feed {feed}</title><link>{base}/</link><description>Grows by one "
            f"entry every {self.step} s</description>\n{items}</channel></rss>\n"
        ).encode()
        tag = hashlib.sha1(plain).hexdigest()[:16]
        return Rendered(plain, gzip.compress(plain, 6, mtime=0), tag, self.published_at(newest))

    def published_at(self, seq: int) -> float:
        return float(int(self.start + (seq - INITIAL + 1) * self.step))

    def item(self, base: str, feed: int, seq: int) -> str:
        if self.items is None:
            self.items = {}
        key = (feed, seq)
        if key not in self.items:
            self.items[key] = render_item(base, feed, seq, self.published_at(seq))
        return self.items[key]


class GrowingFeeds:
    """``feeds`` RSS feeds on ``hosts`` loopback addresses, one new entry each ``grow_every`` s."""

    def __init__(self, feeds: int = 20, hosts: int = 5, entries: int = 200,
                 grow_every: float = 1.0) -> None:  # fmt: skip
        self.spec = ServerSpec(feeds=feeds, entries=entries, latency=0.0, hosts=hosts,
                               grow_every=grow_every)  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.Server] = []
        self.catalog: FreezableCatalog | None = None
        self.urls: list[str] = []

    def __enter__(self) -> GrowingFeeds:
        self.thread.start()
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        future.result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _start(self) -> None:
        app: App | None = None
        for _attempt in range(20):  # another process may hold the port on one of our addresses
            with contextlib.suppress(OSError):
                self.servers = await listen(self.spec, 0, lambda: app)
                break
        else:
            raise RuntimeError("growing feeds: could not bind one port on every loopback address")
        port = self.servers[0].sockets[0].getsockname()[1]
        self.catalog = FreezableCatalog(self.spec, port, time.time())
        app = App(self.spec, self.catalog)
        self.urls = feed_urls(self.spec, port)

    def freeze(self) -> dict[str, set[str]]:
        """Stop growing now; every guid each feed has published so far, by feed URL."""
        assert self.catalog is not None
        self.catalog.frozen_at = time.time()
        return {url: self.published(i) for i, url in enumerate(self.urls)}

    def published(self, feed: int) -> set[str]:
        assert self.catalog is not None and self.catalog.frozen_at is not None
        newest = self.catalog.newest(self.catalog.generation(feed, self.catalog.frozen_at))
        if newest >= self.spec.entries:
            raise AssertionError(
                f"feed {feed} grew to {newest + 1} entries, past its window of {self.spec.entries}:"
                " its oldest ones left the feed and may never have been fetched; shorten the test"
            )
        return {f"urn:bench:{feed}:{seq}" for seq in range(newest + 1)}
