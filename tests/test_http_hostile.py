"""Hostile servers on 127.0.0.1: each case is a clear FetchError in bounded time and memory."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aggregator.config.settings import HttpSettings
from aggregator.errors import FetchError
from aggregator.fetch.http import HttpClient, Response
from tests.httpserver import (
    TestServer,
    accept_and_hang,
    endless_chunked,
    lying_content_length,
    slowloris,
)

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's

MIB = 2**20


def settings(**overrides: Any) -> HttpSettings:
    base = {"allow_private_networks": True, "timeout": 2, "connect_timeout": 1}
    return HttpSettings.model_validate(base | overrides)


def fetch(url: str, config: HttpSettings | None = None, **kwargs: Any) -> Response:
    async def go() -> Response:
        async with HttpClient(config or settings()) as client:
            return await client.get(url, **kwargs)

    return asyncio.run(go())


def timed_failure(url: str, config: HttpSettings | None = None) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(url, config)
    return str(caught.value), time.monotonic() - started


def test_slowloris_hits_the_total_deadline(http_server: TestServer) -> None:
    """One byte every 0.5 s keeps a read timeout happy forever; the total deadline does not."""
    http_server.raw("/slow", slowloris(interval=0.5))
    message, elapsed = timed_failure(http_server.url("/slow"), settings(timeout=2))
    assert message == f"fetch: total deadline of 2s exceeded for {http_server.url('/slow')}"
    assert 1.9 < elapsed < 3.5


def test_server_that_accepts_and_hangs_times_out(http_server: TestServer) -> None:
    http_server.raw("/hang", accept_and_hang)
    message, elapsed = timed_failure(http_server.url("/hang"), settings(timeout=1.5))
    assert message.startswith("fetch: ") and "for http://127.0.0.1" in message
    assert ("timeout" in message) or ("deadline" in message)
    assert elapsed < 3


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listening socket that never accepts, its tiny backlog filled: new SYNs go unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


def test_connect_that_never_completes_hits_connect_timeout(full_backlog: int) -> None:
    url = f"http://127.0.0.1:{full_backlog}/feed"
    message, elapsed = timed_failure(url, settings(timeout=5, connect_timeout=0.5))
    assert message == f"fetch: connect timeout for {url}"
    assert elapsed < 2


def test_lying_content_length_is_a_clean_error(http_server: TestServer) -> None:
    http_server.raw("/lie", lying_content_length(claimed=100_000, actual=b"short"))
    message, elapsed = timed_failure(http_server.url("/lie"))
    assert message.startswith("fetch: network error (RemoteProtocolError")
    assert message.endswith(f"for {http_server.url('/lie')}")
    assert elapsed < 2


def test_declared_length_over_the_cap_is_refused_before_reading(http_server: TestServer) -> None:
    http_server.raw("/big", lying_content_length(claimed=50 * MIB, actual=b""))
    message, _ = timed_failure(http_server.url("/big"), settings(max_body_bytes=MIB))
    assert (
        message
        == f"fetch: body of {50 * MIB} bytes exceeds 1 MiB cap for {http_server.url('/big')}"
    )


def test_endless_chunked_body_stops_at_the_cap(http_server: TestServer) -> None:
    http_server.raw("/endless", endless_chunked())
    message, elapsed = timed_failure(http_server.url("/endless"), settings(max_body_bytes=MIB))
    assert message == f"fetch: body exceeds 1 MiB cap for {http_server.url('/endless')}"
    assert elapsed < 2


def test_body_exactly_at_the_cap_is_accepted(http_server: TestServer) -> None:
    http_server.route("/exact", body=b"a" * 1000, gzip=True)
    assert len(fetch(http_server.url("/exact"), max_bytes=1000).body) == 1000
    with pytest.raises(FetchError, match="exceeds 999 bytes cap"):
        fetch(http_server.url("/exact"), max_bytes=999)


def test_truncate_returns_the_first_bytes_instead_of_failing(http_server: TestServer) -> None:
    http_server.route("/long", body=b"0123456789" * 100)
    assert (
        fetch(http_server.url("/long"), max_bytes=25, truncate=True).body
        == b"0123456789" * 2 + b"01234"
    )


def _peak_while(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: (c := zlib.compressobj(wbits=-15)).compress(data) + c.flush()),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_compression_bomb_stops_at_the_cap_with_bounded_memory(
    http_server: TestServer, encoding: str, pack: Any
) -> None:
    bomb = pack(b"\0" * (64 * MIB))
    assert len(bomb) < MIB // 4  # 64 MiB of zeros packs into a few dozen KiB
    http_server.route("/bomb", body=bomb, headers={"Content-Encoding": encoding})
    url = http_server.url("/bomb")

    def attempt() -> None:
        with pytest.raises(FetchError, match=r"^fetch: body exceeds 1 MiB cap for http"):
            fetch(url, settings(max_body_bytes=MIB))

    assert _peak_while(attempt) < 8 * MIB  # the cap and its copies, nowhere near 64 MiB


def _send_then_close(payload: bytes) -> Callable[[socket.socket], None]:
    def fn(sock: socket.socket) -> None:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    return fn


@pytest.mark.parametrize(
    "payload",
    [
        b"HTTP/1.1 200 OK\r\n" + b"X-Junk: " + b"a" * 300_000 + b"\r\n\r\n",  # endless header
        b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP at all
        b"",  # accepted, then closed without a word
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
    ],
    ids=["huge-header", "not-http", "empty", "bad-chunk"],
)
def test_malformed_responses_are_network_errors(http_server: TestServer, payload: bytes) -> None:
    http_server.raw("/bad", _send_then_close(payload))
    message, elapsed = timed_failure(http_server.url("/bad"))
    assert message.startswith("fetch: network error (")
    assert message.endswith(f"for {http_server.url('/bad')}") and elapsed < 2
