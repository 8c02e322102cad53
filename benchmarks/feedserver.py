"""A fast loopback feed server for benchmarks, run in its own process; it never binds beyond 127/8.

N feeds × M RSS 2.0 entries are spread over many loopback addresses (127.42.0.1, 127.42.0.2, …,
one listener each on one port), so per-host politeness costs what it costs on the real web. Each
response waits ``latency`` seconds (``call_later``, never blocking), bodies are precompressed
(gzip), validators are strong ETags plus Last-Modified with 304 on If-None-Match /
If-Modified-Since, connections are kept alive. Options: feeds that grow (new entries over time) and
a fraction of misbehaving feeds (500, 429 with Retry-After, slow), chosen deterministically so that
a benchmark knows which is which::

    with FeedServer(feeds=1000, entries=20, latency=0.02, hosts=100) as server:
        urls = server.urls            # list[str], feed i on host i % hosts
        server.modes                  # list[str]: "ok" | "error" | "throttle" | "slow", per feed
        server.stats()                # {"requests": …, "status": {"200": …, "304": …}, …}

Command line (what ``FeedServer`` runs): ``python benchmarks/feedserver.py --feeds 1000 …``; it
prints one JSON line ``{"port": P, "urls": [...]}`` when ready and stops on SIGTERM or when stdin
closes (so it never outlives its parent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import email.utils
import gzip
import hashlib
import ipaddress
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

FIRST_HOST = ipaddress.IPv4Address("127.42.0.1")
MODES = ("ok", "error", "throttle", "slow")
_WORDS = (  # noqa: SIM905 (a paragraph of words reads better than a 110-item list)
    "government minister council election market energy region city report police court health "
    "school river bridge festival museum budget export import growth inflation bank currency "
    "trade agreement summit delegation visit president parliament reform law tax farmers harvest "
    "wheat railway airport flight tourism weather storm snow heat water supply project investment "
    "company workers strike union protest talks peace border security army officials statement "
    "spokesman research university students scientists study climate forest wildlife steppe "
    "mountain lake oil gas pipeline mining copper uranium digital internet startup technology "
    "satellite launch football championship team coach match victory record athletes olympic "
    "medal culture theatre film director award concert history anniversary heritage village "
    "district governor mayor"
).split()


@dataclass(frozen=True)
class ServerSpec:
    """Everything the server does; the same values drive the child process and the parent's URLs."""

    feeds: int = 1000
    entries: int = 20
    latency: float = 0.02
    hosts: int = 100
    grow_every: float = 0.0  # seconds between new entries per feed; 0: feeds never change
    error_fraction: float = 0.0  # these feeds answer 500
    throttle_fraction: float = 0.0  # these answer 429 with Retry-After
    slow_fraction: float = 0.0  # these answer after slow_delay more seconds
    slow_delay: float = 5.0
    retry_after: int = 120
    seed: int = 1

    def argv(self) -> list[str]:
        return [f"--{f.name.replace('_', '-')}={getattr(self, f.name)}"
                for f in dataclasses.fields(self)]


def host_of(spec: ServerSpec, feed: int) -> str:
    return str(FIRST_HOST + feed % spec.hosts)


def feed_urls(spec: ServerSpec, port: int) -> list[str]:
    return [f"http://{host_of(spec, i)}:{port}/feeds/{i}.xml" for i in range(spec.feeds)]


def feed_modes(spec: ServerSpec) -> list[str]:
    """Which feeds misbehave, and how: a seeded shuffle, so runs are repeatable."""
    order = list(range(spec.feeds))
    random.Random(spec.seed).shuffle(order)
    modes = ["ok"] * spec.feeds
    start = 0
    for mode, fraction in (("error", spec.error_fraction), ("throttle", spec.throttle_fraction),
                           ("slow", spec.slow_fraction)):
        count = round(fraction * spec.feeds)
        for i in order[start:start + count]:
            modes[i] = mode
        start += count
    return modes


# ---------------------------------------------------------------- content (pure, deterministic)

def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def render_item(base: str, feed: int, seq: int, published: float) -> str:
    rng = random.Random(feed * 1_000_003 + seq)
    title = _words(rng, 6, 11).capitalize()
    paragraphs = "".join(f"<p>{_words(rng, 25, 40).capitalize()}.</p>" for _ in range(2))
    link = f"{base}/articles/{feed}/{seq}.html"
    return (
        f"<item><title>{escape(title)}</title><link>{link}</link>"
        f'<guid isPermaLink="false">urn:bench:{feed}:{seq}</guid>'
        f"<pubDate>{email.utils.formatdate(published, usegmt=True)}</pubDate>"
        f"<category>{rng.choice(_WORDS)}</category>"
        f"<description>{escape(paragraphs)}</description></item>\n"
    )


def render_feed(base: str, feed: int, newest: int, entries: int, dates: list[float]) -> bytes:
    items = "".join(render_item(base, feed, seq, dates[k])
                    for k, seq in enumerate(range(newest, newest - entries, -1)))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Bench feed {feed}</title><link>{base}/</link>"
        f"<description>Synthetic news feed {feed} for benchmarks</description>"
        f"<language>en</language>\n{items}</channel></rss>\n"
    ).encode()


@dataclass(frozen=True)
class Rendered:
    plain: bytes
    gz: bytes
    etag: str
    last_modified: float


class Catalog:
    """The feeds' current bodies, rendered once per generation (growing feeds re-render)."""

    def __init__(self, spec: ServerSpec, port: int, start: float) -> None:
        self.spec = spec
        self.port = port
        self.start = start
        self.step = spec.grow_every or 3600.0
        self.cache: dict[int, tuple[int, Rendered]] = {}
        self.bumps: Counter[int] = Counter()  # entries added on request (``grow``)
        self.grown = 0  # how many times ``grow`` ran: each picks its own feeds

    def generation(self, feed: int, now: float) -> int:
        if not self.spec.grow_every:
            return self.bumps[feed]
        stagger = feed * self.spec.grow_every / max(1, self.spec.feeds)  # not all feeds at once
        return int((now - self.start + stagger) // self.spec.grow_every) + self.bumps[feed]

    def grow(self, fraction: float) -> list[int]:
        """One new entry in each of ``fraction`` of the feeds, picked by the seed: the same
        feeds on every run."""
        self.grown += 1
        picked = random.Random(self.spec.seed * 7919 + self.grown).sample(
            range(self.spec.feeds), round(fraction * self.spec.feeds))
        for feed in picked:
            self.bumps[feed] += 1
        return sorted(picked)

    def get(self, feed: int, now: float) -> Rendered:
        gen = self.generation(feed, now)
        cached = self.cache.get(feed)
        if cached is None or cached[0] != gen:
            cached = (gen, self._render(feed, gen))
            self.cache[feed] = cached
        return cached[1]

    def _render(self, feed: int, gen: int) -> Rendered:
        newest = self.spec.entries - 1 + gen
        count = min(self.spec.entries, newest + 1)
        dates = [self.start + (seq - self.spec.entries + 1) * self.step
                 for seq in range(newest, newest - count, -1)]
        base = f"http://{host_of(self.spec, feed)}:{self.port}"
        plain = render_feed(base, feed, newest, count, dates)
        tag = hashlib.sha1(plain).hexdigest()[:16]
        return Rendered(plain, gzip.compress(plain, 6, mtime=0), tag, float(int(dates[0])))


def render_article(feed: int, seq: int) -> bytes:
    rng = random.Random(feed * 1_000_003 + seq)
    title = escape(_words(rng, 6, 11).capitalize())
    body = "".join(f"<p>{_words(rng, 40, 80).capitalize()}.</p>" for _ in range(6))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{body}</article></body></html>").encode()


# ---------------------------------------------------------------- HTTP

@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool


def parse_request(head: bytes) -> Request | None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    conn = headers.get("connection", "").lower()
    keep = "close" not in conn if parts[2] == "HTTP/1.1" else "keep-alive" in conn
    return Request(parts[0].upper(), parts[1], headers, keep)


_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error"}


def response(status: int, headers: dict[str, str], body: bytes, keep: bool, head: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
             f"Date: {email.utils.formatdate(usegmt=True)}", "Server: bench-feedserver",
             f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep else 'close'}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def not_modified(req: Request, item: Rendered) -> bool:
    """RFC 9110 §13.1.1-2: If-None-Match wins; If-Modified-Since only when it is absent."""
    inm = req.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/").strip('"') for t in inm.split(",")}
        return "*" in tags or bool(tags & {item.etag, item.etag + "-gz"})
    ims = req.headers.get("if-modified-since")
    if ims:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            return email.utils.parsedate_to_datetime(ims).timestamp() >= item.last_modified
    return False


class App:
    """Routes a request to (bytes to send, delay before sending); counts what it answered."""

    def __init__(self, spec: ServerSpec, catalog: Catalog) -> None:
        self.spec = spec
        self.catalog = catalog
        self.modes = feed_modes(spec)
        self.status: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.first_request: float | None = None  # since the last /_stats: a process's start-up

    def handle(self, req: Request) -> tuple[bytes, float]:
        status, headers, body, delay = self.route(req)
        # the benchmark's own probes and controls are not counted
        if req.path != "/_stats" and not req.path.startswith("/_grow"):
            if self.first_request is None:
                self.first_request = time.time()
            self.counts["requests"] += 1
            self.status[str(status)] += 1
            self.counts["bytes"] += len(body)
        return response(status, headers, body, req.keep_alive, req.method == "HEAD"), delay

    def route(self, req: Request) -> tuple[int, dict[str, str], bytes, float]:
        path = req.path.split("?", 1)[0]
        lat = self.spec.latency
        if path.startswith("/feeds/") and path.endswith(".xml"):
            return self.feed(req, path[7:-4])
        if path.startswith("/articles/") and path.endswith(".html"):
            feed, _, seq = path[10:-5].partition("/")
            if feed.isdigit() and seq.isdigit():
                html = render_article(int(feed), int(seq))
                return 200, {"Content-Type": "text/html; charset=utf-8"}, html, lat
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n", lat
        if path == "/_grow":  # ?fraction=F: that fraction of the feeds gain one entry each
            query = urllib.parse.parse_qs(req.path.partition("?")[2])
            grown = self.catalog.grow(float(query.get("fraction", ["0"])[0]))
            return 200, {"Content-Type": "application/json"}, json.dumps(grown).encode(), 0.0
        if path == "/_stats":
            stats = {**self.counts, "status": dict(self.status), "cpu": time.process_time(),
                     "first_request": self.first_request}
            self.first_request = None
            return 200, {"Content-Type": "application/json"}, json.dumps(stats).encode(), 0.0
        return 404, {"Content-Type": "text/plain"}, b"not found\n", lat

    def feed(self, req: Request, name: str) -> tuple[int, dict[str, str], bytes, float]:
        lat = self.spec.latency
        if not name.isdigit() or int(name) >= self.spec.feeds:
            return 404, {"Content-Type": "text/plain"}, b"no such feed\n", lat
        feed = int(name)
        mode = self.modes[feed]
        if mode == "error":
            return 500, {"Content-Type": "text/plain"}, b"internal error\n", lat
        if mode == "throttle":
            return 429, {"Retry-After": str(self.spec.retry_after)}, b"slow down\n", lat
        if mode == "slow":
            lat += self.spec.slow_delay
        item = self.catalog.get(feed, time.time())
        gzipped = "gzip" in req.headers.get("accept-encoding", "")
        headers = {"ETag": f'"{item.etag}-gz"' if gzipped else f'"{item.etag}"',
                   "Last-Modified": email.utils.formatdate(item.last_modified, usegmt=True),
                   "Vary": "Accept-Encoding"}
        if not_modified(req, item):
            return 304, headers, b"", lat
        headers["Content-Type"] = "application/rss+xml; charset=utf-8"
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return 200, headers, item.gz if gzipped else item.plain, lat


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; requests on one connection are answered in order."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.buf = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.app.counts["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.next_request()

    def next_request(self) -> None:
        if self.busy or self.transport is None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                self.transport.close()
            return
        req = parse_request(bytes(self.buf[:end]))
        del self.buf[:end + 4]
        if req is None or req.headers.get("content-length", "0") != "0":
            self.transport.write(response(400, {}, b"bad request\n", False, False))
            self.transport.close()
            return
        self.busy = True
        data, delay = self.app.handle(req)
        asyncio.get_running_loop().call_later(delay, self.send, data, req.keep_alive)

    def send(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()
            return
        self.busy = False
        self.next_request()


# ---------------------------------------------------------------- the child process

async def listen(spec: ServerSpec, port: int, app_for: Any) -> list[asyncio.Server]:
    """One listener per loopback address, all on ``port`` (0: the first picks one)."""
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    try:
        for k in range(spec.hosts):
            server = await loop.create_server(lambda: HttpProtocol(app_for()), str(FIRST_HOST + k),
                                              port, backlog=1024)
            port = server.sockets[0].getsockname()[1]
            servers.append(server)
    except OSError:
        for server in servers:
            server.close()
        raise
    return servers


async def serve(spec: ServerSpec) -> None:
    app: App | None = None
    for _attempt in range(20):  # another process may hold the port on one of our addresses
        with contextlib.suppress(OSError):
            servers = await listen(spec, 0, lambda: app)
            break
    else:
        raise SystemExit("feedserver: could not bind one port on every loopback address")
    port = servers[0].sockets[0].getsockname()[1]
    catalog = Catalog(spec, port, float(int(time.time())))
    for feed in range(spec.feeds):  # render now, so that no measured request pays for it
        catalog.get(feed, catalog.start)
    app = App(spec, catalog)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: None if os.read(stdin, 4096) else stop.set())
    print(json.dumps({"port": port, "urls": feed_urls(spec, port)}), flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def parse_args(argv: list[str] | None = None) -> ServerSpec:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(ServerSpec):
        default = getattr(ServerSpec, f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default)
    return ServerSpec(**vars(parser.parse_args(argv)))


# ---------------------------------------------------------------- the parent's handle

class FeedServer:
    """Starts the server in a child process (so it never shares the measured process's GIL)."""

    def __init__(self, feeds: int = 1000, entries: int = 20, latency: float = 0.02,
                 hosts: int = 100, **options: Any) -> None:
        self.spec = ServerSpec(feeds=feeds, entries=entries, latency=latency,
                               hosts=min(hosts, max(1, feeds)), **options)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.urls: list[str] = []
        self.modes = feed_modes(self.spec)

    def start(self, timeout: float = 60.0) -> FeedServer:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()),
                                      *self.spec.argv()], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("feedserver did not start (see its stderr above)")
        info = json.loads(line)
        self.port, self.urls = info["port"], info["urls"]
        return self

    def _control(self, path: str) -> Any:
        """The JSON answer of one of the server's own endpoints (not counted as a request)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{FIRST_HOST}:{self.port}{path}", timeout=10) as resp:
            return json.load(resp)

    def stats(self) -> dict[str, Any]:
        """The server's counters: requests, connections, bytes, and responses by status."""
        result: dict[str, Any] = self._control("/_stats")
        return result

    def grow(self, fraction: float) -> list[int]:
        """Give ``fraction`` of the feeds one new entry each (the others stay unchanged); the
        feeds that grew."""
        grown: list[int] = self._control(f"/_grow?fraction={fraction}")
        return grown

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()  # the server stops when its stdin closes
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
