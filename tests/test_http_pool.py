"""The connection pool (aggregator/fetch/httppool.py) through HttpClient, real servers on 127.0.0.1.

What a pool must get right: reuse a connection only when its last exchange ended cleanly and the
server still holds it, and never more than 8 at once per origin, whatever was cancelled. The
server counts the connections it accepts; hostile answers go out on the raw socket, which is held
open afterwards, so that a connection wrongly reused would get a telltale answer, not an EOF.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from aggregator.config.settings import HttpSettings
from aggregator.errors import FetchError
from aggregator.fetch.http import HttpClient
from tests.httpserver import (
    RawHandler,
    RecordedRequest,
    Route,
    TestServer,
    accept_and_hang,
    slowloris,
)

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's

T = TypeVar("T")

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REUSED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nreused"  # only a reused connection gets it
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"


class CountingServer(TestServer):
    """The scripted server, counting the connections it accepts."""

    def __init__(self) -> None:
        self.accepted = 0
        self._count_lock = threading.Lock()
        super().__init__()

    def _track(self, sock: socket.socket) -> None:
        with self._count_lock:
            self.accepted += 1
        super()._track(sock)


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with CountingServer() as running:
        running.route("/next", body=b"fresh")
        yield running


def settings(**overrides: Any) -> HttpSettings:
    base = {"allow_private_networks": True, "timeout": 2, "connect_timeout": 1}
    return HttpSettings.model_validate(base | overrides)


def with_client(go: Callable[[HttpClient], Awaitable[T]], config: HttpSettings | None = None) -> T:
    """Run ``go`` with one client (one pool) on a fresh event loop."""

    async def main() -> T:
        async with HttpClient(config or settings()) as client:
            return await go(client)

    return asyncio.run(main())


def answers(first: bytes, *more: bytes, later: bytes = b"") -> RawHandler:
    """Answer the request read with ``first`` (then ``later``, 0.1 s on), each next request on the
    same connection with the next of ``more``; then hold the connection until the client drops it.
    """

    def fn(sock: socket.socket) -> None:
        sock.sendall(first)
        if later:
            time.sleep(0.1)
            sock.sendall(later)
        pending, buffer = list(more), b""
        while pending and (data := sock.recv(65536)):
            buffer += data
            while b"\r\n\r\n" in buffer and pending:
                buffer = buffer.split(b"\r\n\r\n", 1)[1]
                sock.sendall(pending.pop(0))
        accept_and_hang(sock)

    return fn


def then_close(response: bytes, pause: float = 0.0) -> RawHandler:
    """Answer as if keeping the connection alive (no Connection: close), then close it."""

    def fn(sock: socket.socket) -> None:
        sock.sendall(response)
        time.sleep(pause)

    return fn


# -- reuse ---------------------------------------------------------------------------------


def test_conditional_gets_reuse_one_connection(server: CountingServer) -> None:
    server.route("/feed", body=b"<rss/>" * 100, etag='"v1"')

    async def go(client: HttpClient) -> list[int]:
        first = await client.get(server.url("/feed"))
        return [first.status] + [
            (await client.get(server.url("/feed"), etag='"v1"')).status for _ in range(10)
        ]

    assert with_client(go) == [200] + [304] * 10
    assert server.accepted == 1


def test_redirects_reuse_their_connection(server: CountingServer) -> None:
    """The redirect's body (1 KB here) is read to its end, so its connection goes on serving."""
    server.route("/feed", body=b"<rss/>")
    server.route("/old", status=301, headers={"Location": "/feed"}, body=b"moved " * 200)

    async def go(client: HttpClient) -> list[tuple[int, bytes, int]]:
        responses = [await client.get(server.url("/old")) for _ in range(5)]
        return [(r.status, r.body, len(r.redirects)) for r in responses]

    assert with_client(go) == [(200, b"<rss/>", 1)] * 5
    assert server.accepted == 1


def test_a_body_left_unread_closes_its_connection(server: CountingServer) -> None:
    """A redirect body over the 64 KiB drain limit is not read to its end: its connection is
    dropped (reused, its rest would be read as the next answer), the other one kept."""
    server.route("/feed", body=b"<rss/>")
    server.route("/old", status=302, headers={"Location": "/feed"}, body=b"x" * 200_000)

    async def go(client: HttpClient) -> list[bytes]:
        return [(await client.get(server.url("/old"))).body for _ in range(3)]

    assert with_client(go) == [b"<rss/>"] * 3
    # Round n: the redirect goes out on the connection /feed left idle (1 new in round 1),
    # which then closes; /feed opens the next one. Rounds 2 and 3 each open one.
    assert server.accepted == 4


# -- not reused: bytes after the response, Connection: close, HTTP/1.0, ambiguous framing ----

FIRST_ANSWERS = {
    "content-length": (OK, b"ok"),
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", b"ok"
    ),
    "304": (b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n", b""),
}


@pytest.mark.parametrize("kind", FIRST_ANSWERS)
@pytest.mark.parametrize("when", ["same-write", "after-the-response"])
def test_bytes_after_a_response_mean_no_reuse(server: CountingServer, kind: str, when: str) -> None:
    """An extra response after a complete one is never read as the answer to the next request:
    in the same write (h11 holds it as trailing data) or arriving while idle (read as closed)."""
    first, body = FIRST_ANSWERS[kind]
    smuggle = answers(first + SMUGGLED) if when == "same-write" else answers(first, later=SMUGGLED)
    server.raw("/first", smuggle)

    async def go(client: HttpClient) -> list[bytes]:
        answer = await client.get(server.url("/first"), etag='"v1"')
        await asyncio.sleep(0.3 if when == "after-the-response" else 0)
        return [answer.body, (await client.get(server.url("/next"))).body]

    assert with_client(go) == [body, b"fresh"]
    assert server.accepted == 2


@pytest.mark.parametrize(
    "first",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",  # as h11
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0", "http-1.0-keep-alive", "length-and-chunked"],
)
def test_connections_that_must_close_are_not_reused(server: CountingServer, first: bytes) -> None:
    """The server holds the connection open, and would answer REUSED on it.

    Both Content-Length and chunked: h11 reads the body as chunked (Transfer-Encoding wins), and
    RFC 9112 §6.3 (3) calls such a message a possible smuggling attempt: no reuse either.
    """
    server.raw("/first", answers(first, REUSED))

    async def go(client: HttpClient) -> list[bytes]:
        return [(await client.get(server.url(path))).body for path in ("/first", "/next")]

    assert with_client(go) == [b"ok", b"fresh"]
    assert server.accepted == 2


def test_http_1_0_body_until_close(server: CountingServer) -> None:
    def fn(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, old world")
        sock.shutdown(socket.SHUT_WR)

    server.raw("/old", fn)

    async def go(client: HttpClient) -> list[bytes]:
        return [(await client.get(server.url(path))).body for path in ("/old", "/old", "/next")]

    assert with_client(go) == [b"hello, old world", b"hello, old world", b"fresh"]
    assert server.accepted == 3


# -- the server closed a kept-alive connection ---------------------------------------------


def test_server_closing_after_each_response_is_no_error(server: CountingServer) -> None:
    """HTTP/1.1 without Connection: close, then a close: the client's next request may go out
    before the close arrives. Nothing of an answer came, so the GET is sent again on a new
    connection (RFC 9110 §9.2.2: an idempotent request may be retried)."""
    server.raw("/feed", then_close(OK))

    async def go(client: HttpClient) -> list[bytes]:
        return [(await client.get(server.url("/feed"))).body for _ in range(30)]

    assert with_client(go) == [b"ok"] * 30
    assert server.accepted == 30


def test_server_closing_an_idle_connection_is_no_error(server: CountingServer) -> None:
    """The close arrives while the connection is idle: the pool drops it and opens another."""
    server.raw("/feed", then_close(OK, pause=0.1))

    async def go(client: HttpClient) -> list[bytes]:
        bodies = []
        for _ in range(3):
            bodies.append((await client.get(server.url("/feed"))).body)
            await asyncio.sleep(0.4)
        return bodies

    assert with_client(go) == [b"ok"] * 3
    assert server.accepted == 3


def test_a_fresh_connection_closed_without_an_answer_is_not_retried(
    server: CountingServer,
) -> None:
    """Only a kept-alive connection's silent close is retried: a new one closing is an error."""
    server.raw("/feed", then_close(b""))
    with pytest.raises(FetchError, match="Server disconnected without sending a response"):
        with_client(lambda client: client.get(server.url("/feed")))
    assert server.accepted == 1


# -- limits, and slots freed by timeouts ---------------------------------------------------


class Concurrency:
    """A route handler that holds each request a while and records the most in flight per host."""

    def __init__(self, hold: float) -> None:
        self._hold = hold
        self._lock = threading.Lock()
        self._now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def __call__(self, request: RecordedRequest) -> Route:
        with self._lock:
            self._now[request.host] = now = self._now.get(request.host, 0) + 1
            self.peak[request.host] = max(self.peak.get(request.host, 0), now)
        time.sleep(self._hold)
        with self._lock:
            self._now[request.host] -= 1
        return Route(body=b"ok")


def test_at_most_8_connections_per_origin(server: CountingServer) -> None:
    """20 requests at once to each of two origins: 8 in flight at each, never more."""
    counter = Concurrency(hold=0.3)
    server.route("/slow", handler=counter)
    urls = [server.url("/slow"), server.url("/slow", host="127.0.0.2")]

    async def go(client: HttpClient) -> list[bytes]:
        responses = await asyncio.gather(*(client.get(url) for url in urls for _ in range(20)))
        return [r.body for r in responses]

    assert with_client(go, settings(timeout=10)) == [b"ok"] * 40
    assert counter.peak == {"127.0.0.1": 8, "127.0.0.2": 8}


@pytest.mark.parametrize(
    "hostile",
    [accept_and_hang, slowloris(interval=0.05)],
    ids=["no-answer", "endless-body"],
)
def test_slots_are_free_again_after_timeouts_and_cancels(
    server: CountingServer, hostile: RawHandler
) -> None:
    """8 requests hold the origin's connections until the total deadline; 4 more, waiting for a
    slot, are cancelled meanwhile (a shutdown). Then 20 requests to that origin all succeed,
    still at most 8 at once: no slot leaked, none given back that was not taken."""
    server.raw("/hostile", hostile)
    counter = Concurrency(hold=0.05)
    server.route("/feed", handler=counter)

    async def go(client: HttpClient) -> tuple[list[BaseException], list[bytes]]:
        holding = [asyncio.create_task(client.get(server.url("/hostile"))) for _ in range(8)]
        await asyncio.sleep(0.2)
        waiting = [asyncio.create_task(client.get(server.url("/hostile"))) for _ in range(4)]
        await asyncio.sleep(0.2)
        for task in waiting:
            task.cancel()
        outcomes = await asyncio.gather(*holding, *waiting, return_exceptions=True)
        after = await asyncio.gather(*(client.get(server.url("/feed")) for _ in range(20)))
        return [o for o in outcomes if isinstance(o, BaseException)], [r.body for r in after]

    failures, bodies = with_client(go, settings(timeout=1))
    assert [type(f) for f in failures] == [FetchError] * 8 + [asyncio.CancelledError] * 4
    assert all("total deadline of 1s exceeded" in str(f) for f in failures[:8])
    assert bodies == [b"ok"] * 20
    assert counter.peak == {"127.0.0.1": 8}
    assert server.hits("/hostile") == 8  # the cancelled ones never had a connection


def test_every_request_gets_its_own_answer_under_concurrency(server: CountingServer) -> None:
    """Connections handed from one request to the next never cross answers."""
    server.route("/echo", handler=lambda r: Route(body=r.headers["if-none-match"].encode()))

    async def one(client: HttpClient, n: int) -> bytes:
        return (await client.get(server.url("/echo"), etag=f'"{n}"')).body

    async def go(client: HttpClient) -> list[bytes]:
        return await asyncio.gather(*(one(client, n) for n in range(200)))

    assert with_client(go) == [f'"{n}"'.encode() for n in range(200)]
    print('ACCEPTED', server.accepted)
