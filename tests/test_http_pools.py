"""One connection pool per origin: idle pools are closed and forgotten, busy ones never are."""

from __future__ import annotations

import asyncio

import httpcore
import pytest

import aggregator.fetch.httppool as pool_module
from aggregator.config.settings import HttpSettings
from aggregator.fetch.http import HttpClient
from tests.httpserver import TestServer

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's


class FakePool:
    """Stands in for httpcore's pool: answers at once, and records being closed."""

    def __init__(self, closed: list[FakePool]) -> None:
        self._closed = closed

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        return httpcore.Response(200, content=b"ok")

    async def aclose(self) -> None:
        self._closed.append(self)


def request(n: int) -> httpcore.Request:
    return httpcore.Request("GET", f"http://host{n}.example/")


def test_idle_pools_are_swept_and_busy_ones_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "_KEEPALIVE_EXPIRY", 0.0)
    closed: list[FakePool] = []
    pools = pool_module.OriginPools(lambda: FakePool(closed))  # type: ignore[arg-type,return-value]

    async def go() -> None:
        busy = await pools.handle_async_request(request(-1))  # its body is never closed
        for n in range(2000):
            response = await pools.handle_async_request(request(n))
            await response.aclose()
        assert pools.size <= 600
        assert len(closed) >= 1400
        kept = pools._pools[(b"http", b"host-1.example", None)].pool
        assert all(id(p) != id(kept) for p in closed)
        await busy.aclose()
        await pools.aclose()

    asyncio.run(go())
    assert len(closed) == 2001


def test_many_origins_through_one_client(http_server: TestServer) -> None:
    """Twenty loopback hosts, forty requests each, concurrently per round."""
    http_server.route("/feed", body=b"ok")
    urls = [http_server.url("/feed", host=f"127.0.0.{i}") for i in range(1, 21)]
    settings = HttpSettings.model_validate({"allow_private_networks": True, "timeout": 5})

    async def go() -> list[bytes]:
        async with HttpClient(settings) as client:
            bodies: list[bytes] = []
            for _ in range(40):
                responses = await asyncio.gather(*(client.get(u) for u in urls))
                bodies.extend(r.body for r in responses)
            return bodies

    assert asyncio.run(go()) == [b"ok"] * 800
    assert len(http_server.requests) == 800
