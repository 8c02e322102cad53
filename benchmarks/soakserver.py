"""The soak test's loopback feed server: feedserver plus hostile feeds and a request log.

It wraps (never edits) :mod:`benchmarks.feedserver`: the healthy feeds, their growth, validators and
the ``error`` / ``throttle`` / ``slow`` modes are that server's. This file adds the hostile modes of
DESIGN.md's security bar (a gzip bomb, slowloris, accept-and-hang, an endless chunked body, a lying
Content-Length, HTML served as a feed, 410 Gone, a redirect loop) and records the arrival time of
every feed request, so that the soak driver can check each feed's schedule. ``GET /_log`` returns
``{"modes": [...], "times": {"feed": [unix times]}, "status": {...}}``; it is not counted.
It runs as a child process (``python benchmarks/soakserver.py --feeds 2000 …``) like feedserver.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gzip
import json
import os
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python benchmarks/soakserver.py`
    sys.path.insert(0, str(ROOT))

from benchmarks.feedserver import (  # noqa: E402
    FIRST_HOST,
    App,
    Catalog,
    HttpProtocol,
    Request,
    ServerSpec,
    feed_urls,
)

# Misbehaving modes and their share of ALL feeds (20 % together); the rest are "ok".
MISBEHAVING: dict[str, float] = {
    "error": 0.04,  # 500
    "throttle": 0.04,  # 429 with Retry-After (seconds)
    "slow": 0.03,  # answers after slow_delay seconds
    "bomb": 0.02,  # 200, gzip: 64 MiB of zeros in ~64 KiB
    "slowloris": 0.02,  # one body byte every 0.5 s
    "hang": 0.01,  # reads the request, never answers
    "chunked": 0.01,  # an endless chunked body
    "lying": 0.01,  # Content-Length 1,000,000, five bytes, then close
    "html": 0.01,  # an HTML page served as the feed
    "gone": 0.005,  # 410
    "loop": 0.005,  # redirects to itself
}
RAW_MODES = frozenset({"slowloris", "hang", "chunked", "lying"})
BOMB_SIZE = 64 * 2**20
_HTML = (b"<!doctype html><html><head><title>Welcome</title></head><body><h1>Our new site</h1>"
         b"<p>The feed has moved. Please visit our homepage.</p></body></html>")


def soak_modes(feeds: int, seed: int, shares: dict[str, float] | None = None) -> list[str]:
    """Which feed does what: a seeded shuffle, so that the driver and the server agree."""
    order = list(range(feeds))
    random.Random(seed).shuffle(order)
    modes = ["ok"] * feeds
    start = 0
    for mode, share in (shares or MISBEHAVING).items():
        count = round(share * feeds)
        for i in order[start:start + count]:
            modes[i] = mode
        start += count
    return modes


class Hostile(bytes):
    """A response the protocol does not send as is: it acts out ``mode`` on the raw socket."""

    mode: str

    @classmethod
    def of(cls, mode: str) -> Hostile:
        made = cls(b"")
        made.mode = mode
        return made


class SoakApp(App):
    """feedserver's App with the hostile modes and a per-feed log of request times."""

    def __init__(self, spec: ServerSpec, catalog: Catalog) -> None:
        super().__init__(spec, catalog)
        self.modes = soak_modes(spec.feeds, spec.seed)
        self.times: dict[int, list[float]] = defaultdict(list)
        self.bomb = gzip.compress(b"\0" * BOMB_SIZE, 9)

    def handle(self, req: Request) -> tuple[bytes, float]:
        path = req.path.split("?", 1)[0]
        if path == "/_log":
            return self.log_response(), 0.0
        feed = _feed_number(path, self.spec.feeds)
        if feed is None:
            return super().handle(req)
        self.times[feed].append(time.time())
        mode = self.modes[feed]
        if mode in RAW_MODES:
            self.counts["requests"] += 1
            self.status[mode] += 1
            return Hostile.of(mode), 0.0
        return super().handle(req)

    def feed(self, req: Request, name: str) -> tuple[int, dict[str, str], bytes, float]:
        lat = self.spec.latency
        mode = self.modes[int(name)]
        if mode == "bomb":
            headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
            return 200, headers, self.bomb, lat
        if mode == "html":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, _HTML, lat
        if mode == "gone":
            return 410, {"Content-Type": "text/plain"}, b"gone\n", lat
        if mode == "loop":
            return 301, {"Location": req.path}, b"", lat
        return super().feed(req, name)

    def log_response(self) -> bytes:
        payload = json.dumps({"modes": self.modes, "status": dict(self.status),
                              "times": {str(k): v for k, v in self.times.items()}}).encode()
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
        return head.encode() + payload


def _feed_number(path: str, feeds: int) -> int | None:
    if not (path.startswith("/feeds/") and path.endswith(".xml")):
        return None
    name = path[7:-4]
    return int(name) if name.isdigit() and int(name) < feeds else None


class SoakProtocol(HttpProtocol):
    """feedserver's protocol; a :class:`Hostile` answer is acted out instead of sent."""

    def send(self, data: bytes, keep_alive: bool) -> None:
        if not isinstance(data, Hostile):
            super().send(data, keep_alive)
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        {"slowloris": self._slowloris, "hang": lambda: None, "chunked": self._chunked,
         "lying": self._lying}[data.mode]()

    def _alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def _later(self, delay: float, fn: Any) -> None:
        asyncio.get_running_loop().call_later(delay, fn)

    def _slowloris(self) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                             b"Content-Length: 100000\r\n\r\n")
        self._drip()

    def _drip(self) -> None:
        if self._alive():
            assert self.transport is not None
            self.transport.write(b"x")
            self._later(0.5, self._drip)

    def _chunked(self) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
        self._pump(b"10000\r\n" + b"A" * 0x10000 + b"\r\n")

    def _pump(self, frame: bytes) -> None:
        """Keep about 1 MiB queued until the client hangs up (never an unbounded buffer)."""
        if not self._alive():
            return
        assert self.transport is not None
        while self.transport.get_write_buffer_size() < 2**20 and self._alive():
            self.transport.write(frame)  # a write after the peer left buffers nothing
        self._later(0.005, lambda: self._pump(frame))

    def _lying(self) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                             b"Content-Length: 1000000\r\n\r\nshort")
        self.transport.close()


async def listen(spec: ServerSpec, app: list[SoakApp]) -> list[asyncio.Server]:
    """One listener per loopback address, all on one port; retried if another process has it."""
    loop = asyncio.get_running_loop()
    for _attempt in range(20):
        servers: list[asyncio.Server] = []
        port = 0
        try:
            for k in range(spec.hosts):
                server = await loop.create_server(lambda: SoakProtocol(app[0]),
                                                  str(FIRST_HOST + k), port, backlog=1024)
                port = server.sockets[0].getsockname()[1]
                servers.append(server)
            return servers
        except OSError:
            for server in servers:
                server.close()
    raise SystemExit("soakserver: could not bind one port on every loopback address")


async def serve(spec: ServerSpec) -> None:
    holder: list[SoakApp] = []
    servers = await listen(spec, holder)
    port = servers[0].sockets[0].getsockname()[1]
    catalog = Catalog(spec, port, float(int(time.time())))
    for feed in range(spec.feeds):
        catalog.get(feed, catalog.start)
    holder.append(SoakApp(spec, catalog))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: None if os.read(stdin, 4096) else stop.set())
    print(json.dumps({"port": port, "urls": feed_urls(spec, port), "modes": holder[0].modes}),
          flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def parse_args(argv: list[str] | None = None) -> ServerSpec:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for f in dataclasses.fields(ServerSpec):
        default = getattr(ServerSpec, f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default)
    return ServerSpec(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
