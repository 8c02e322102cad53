"""A real, scripted HTTP/1.1 server on loopback for tests; it never reaches beyond 127.0.0.0/8.

Tests script routes (status, body, headers, delay, validators, gzip, a dynamic handler) or take the
raw socket for hostile cases, and read back what the server received::

    def test_x(http_server: TestServer) -> None:
        http_server.route("/feed.xml", body=b"<rss/>", etag='"v1"', gzip=True)
        http_server.redirect("/old", "/feed.xml", status=301)
        http_server.raw("/slow", slowloris(interval=0.5))
        url = http_server.url("/feed.xml", host="127.0.0.2")   # another loopback address, same port
        ...
        assert http_server.hits("/feed.xml") == 1

Routes are shared by every loopback address the server listens on, unless ``route(..., host=...)``
scopes one to a single address. Unknown paths answer 404. ``gzip=True`` compresses whatever the
client accepts (a test of a misbehaving server is the point). ``etag``/``last_modified`` answer
304 to matching validators. Each ``RecordedRequest`` carries its arrival ``time`` (monotonic), for
politeness tests. ``TestServer(tls=context)`` serves https. The hostile handlers for ``raw``:
``slowloris``, ``accept_and_hang``, ``lying_content_length``, ``endless_chunked``.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip as gzip_module
import ipaddress
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "RawHandler",
    "RecordedRequest",
    "Route",
    "TestServer",
    "accept_and_hang",
    "endless_chunked",
    "http_server",
    "lying_content_length",
    "slowloris",
]

RawHandler = Callable[[socket.socket], None]


@dataclass
class RecordedRequest:
    """One request as the server saw it; ``time`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    headers: dict[str, str]
    host: str
    time: float = 0.0


@dataclass
class Route:
    """What a path answers. ``handler`` (if set) computes the Route per request instead."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    handler: Callable[[RecordedRequest], Route] | None = None


_NOT_FOUND = Route(status=404, body=b"not found", headers={"Content-Type": "text/plain"})


def _not_modified(route: Route, req: RecordedRequest) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since when both are present."""
    inm = req.headers.get("if-none-match")
    if route.etag is not None and inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or route.etag.removeprefix("W/") in tags
    ims = req.headers.get("if-modified-since")
    if route.last_modified is None or ims is None:
        return False
    if ims == route.last_modified:
        return True
    try:
        return email.utils.parsedate_to_datetime(ims) >= email.utils.parsedate_to_datetime(
            route.last_modified
        )
    except (TypeError, ValueError):
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go out as two writes: no 40 ms delayed-ACK stall
    server: _Listener

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(5)
            self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        req = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            host=str(self.server.server_address[0]),
            time=time.monotonic(),
        )
        owner._record(req)
        raw = owner._raw_for(req)
        if raw is not None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                raw(self.connection)
            return
        route = owner._route_for(req)
        while route.handler is not None:
            route = route.handler(req)
        if route.delay:
            time.sleep(route.delay)
        self._answer(route, req, head=head)

    def _answer(self, route: Route, req: RecordedRequest, *, head: bool) -> None:
        status, body = route.status, route.body
        if _not_modified(route, req):
            status, body = 304, b""
        headers = dict(route.headers)
        if route.etag is not None:
            headers.setdefault("ETag", route.etag)
        if route.last_modified is not None:
            headers.setdefault("Last-Modified", route.last_modified)
        if route.gzip and body:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304 and "content-length" not in {h.lower() for h in headers}:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != 304:
            with contextlib.suppress(OSError):
                self.wfile.write(body)


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hostile raw handlers may hang; close() must not wait for them
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], owner: TestServer, tls: ssl.SSLContext | None
    ) -> None:
        self.owner = owner
        super().__init__(address, _Handler)
        if tls is not None:  # the handshake runs in the handler thread, never in accept()
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (resets, broken pipes, failed TLS handshakes) are routine here."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._track(request)
        super().process_request(request, client_address)


class TestServer:
    """The scripted server; listens on 127.0.0.1 and, on demand, other 127.x addresses."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server-side context (with its certificate) makes this an https server."""
        self._tls = tls
        self.scheme = "https" if tls is not None else "http"
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._routes: dict[tuple[str | None, str], Route] = {}
        self._raws: dict[tuple[str | None, str], RawHandler] = {}
        self._listeners: dict[str, _Listener] = {}
        self._sockets: list[socket.socket] = []
        self._closed = False
        first = self._listen("127.0.0.1", 0)
        self.port: int = first.server_address[1]
        self.base_url = f"{self.scheme}://127.0.0.1:{self.port}"

    # -- scripting -------------------------------------------------------------------------
    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """A URL here; another 127.x ``host`` gets its own listener (same port when free)."""
        port = self.port
        if _is_loopback_v4(host):
            port = self._ensure_listener(host)
        netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{self.scheme}://{netloc}:{port}{path}"

    def route(self, path: str, *, host: str | None = None, **kwargs: Any) -> None:
        """Set or replace the Route for ``path`` (on every address, or only on ``host``)."""
        with self._lock:
            self._routes[(host, path)] = Route(**kwargs)
            self._raws.pop((host, path), None)

    def redirect(self, path: str, to: str, status: int = 301, *, host: str | None = None) -> None:
        """Answer ``path`` with a redirect to ``to`` (absolute or relative, any scheme)."""
        self.route(path, host=host, status=status, headers={"Location": to})

    def raw(self, path: str, fn: RawHandler, *, host: str | None = None) -> None:
        """Hand the socket to ``fn`` after the request head is read; the connection then closes."""
        with self._lock:
            self._raws[(host, path)] = fn
            self._routes.pop((host, path), None)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        """Stop every listener and cut open connections so hanging raw handlers return."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners, sockets = list(self._listeners.values()), list(self._sockets)
        for listener in listeners:
            listener.shutdown()
            listener.server_close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> TestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------
    def _listen(self, host: str, port: int) -> _Listener:
        listener = _Listener((host, port), self, self._tls)
        thread = threading.Thread(
            target=listener.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._listeners[host] = listener
        return listener

    def _ensure_listener(self, host: str) -> int:
        with self._lock:
            if host in self._listeners:
                return self._listeners[host].server_address[1]
            try:
                listener = self._listen(host, self.port)
            except OSError:  # the port is taken on that address: any free port will do
                listener = self._listen(host, 0)
            return listener.server_address[1]

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets = [s for s in self._sockets if s.fileno() != -1]
            self._sockets.append(sock)

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _raw_for(self, req: RecordedRequest) -> RawHandler | None:
        path = req.path
        with self._lock:
            return self._raws.get((req.host, path)) or self._raws.get((None, path))

    def _route_for(self, req: RecordedRequest) -> Route:
        path = req.path
        with self._lock:
            return self._routes.get((req.host, path)) or self._routes.get((None, path), _NOT_FOUND)


def _is_loopback_v4(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.version == 4 and addr.is_loopback


# -- hostile raw handlers ------------------------------------------------------------------


def slowloris(interval: float = 0.5, status_line: bytes = b"HTTP/1.1 200 OK\r\n") -> RawHandler:
    """Send a valid head, then one body byte every ``interval`` seconds, forever."""

    def fn(sock: socket.socket) -> None:
        sock.sendall(status_line + b"Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
        while True:
            sock.sendall(b"x")
            time.sleep(interval)

    return fn


def accept_and_hang(sock: socket.socket) -> None:
    """Read the request and never answer; returns when the peer or the server closes."""
    with contextlib.suppress(OSError):
        while sock.recv(4096):
            pass


def lying_content_length(claimed: int = 1_000_000, actual: bytes = b"short") -> RawHandler:
    """Promise ``claimed`` bytes, send ``actual`` and close the connection."""

    def fn(sock: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {claimed}\r\n\r\n"
        sock.sendall(head.encode() + actual)
        sock.shutdown(socket.SHUT_WR)

    return fn


def endless_chunked(chunk: bytes = b"A" * 65536) -> RawHandler:
    """A chunked body that never ends; stops only when the client hangs up."""

    def fn(sock: socket.socket) -> None:
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            sock.sendall(frame)

    return fn


@pytest.fixture
def http_server() -> Iterator[TestServer]:
    """A fresh scripted server per test, closed afterwards."""
    server = TestServer()
    try:
        yield server
    finally:
        server.close()
