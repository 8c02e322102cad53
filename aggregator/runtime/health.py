"""``GET /healthz`` and ``GET /metrics`` on ``service.listen``, served in the service's own loop.

A small Starlette app on uvicorn, started as a task of the running event loop: nothing here
blocks the loop (the database probe and the metrics files are read in threads), and uvicorn is
told to leave the service's signal handlers alone. With ``service.listen_token`` every request
needs ``Authorization: Bearer <token>`` (a plain ASGI guard, so an app mounted beside the
endpoints, e.g. the web view, gets the same rule). Starlette and uvicorn load only when
``service.listen`` is set.

/healthz answers 200 while the dispatch tick runs (it last ran within ``stale_after``) and the
database takes a write transaction within ``PROBE_TIMEOUT``; otherwise 503 with a one-line JSON
reason. One probe at a time: concurrent requests share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from aggregator.config.listen import parse_listen
from aggregator.errors import ConfigError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.0  # the database must take a write transaction within this
CLAIM_WAIT = 30.0  # a tick's claim may wait this long for SQLite's lock (its busy timeout)


class Health:
    """What /healthz decides on: the dispatch tick's heartbeat and a database probe."""

    def __init__(self, tick: float, probe: Callable[[float], None],
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.tick = tick
        self.probe = probe  # raises if the database cannot start a write within the timeout
        self.clock = clock
        self.last_tick: float | None = None
        self._probing: asyncio.Task[str | None] | None = None

    @property
    def stale_after(self) -> float:
        """A tick is late after three periods, plus what its claim may wait for the lock."""
        return 3 * self.tick + CLAIM_WAIT

    def beat(self) -> None:
        self.last_tick = self.clock()

    def tick_age(self) -> float | None:
        return None if self.last_tick is None else self.clock() - self.last_tick

    def tick_problem(self) -> str | None:
        age = self.tick_age()
        if age is None:
            return "starting: the dispatch tick has not run yet"
        if age > self.stale_after:
            return f"dispatch tick: last ran {age:.0f}s ago (limit {self.stale_after:.0f}s)"
        return None

    async def problem(self) -> str | None:
        """None when healthy, else the reason in one line."""
        return self.tick_problem() or await self._database_problem()

    async def _database_problem(self) -> str | None:
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._probe())
        return await asyncio.shield(self._probing)

    async def _probe(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.probe, PROBE_TIMEOUT),
                                   PROBE_TIMEOUT + 0.5)  # fmt: skip
        except TimeoutError:
            return f"database: no answer within {PROBE_TIMEOUT:.0f}s"
        except Exception as exc:  # a StorageError, or anything the driver threw at us
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            return f"database: cannot write within {PROBE_TIMEOUT:.0f}s ({first})"
        return None


class BearerGuard:
    """Every HTTP request must carry ``Authorization: Bearer <token>`` (401 otherwise)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                from starlette.responses import PlainTextResponse

                refusal = PlainTextResponse("401 Unauthorized: a bearer token is required\n", 401,
                                            headers={"WWW-Authenticate": "Bearer"})
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(health: Health, metrics: Callable[[], Awaitable[bytes]], token: str | None,
              mounts: Sequence[tuple[str, ASGIApp]] = ()) -> ASGIApp:  # fmt: skip
    """The endpoints; ``mounts`` is the seam for other apps under the same listener and token
    rule (``service.web`` may mount the web view at ``/``: mounts come after the endpoints)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    async def healthz(request: Request) -> Response:
        problem = await health.problem()
        body = {"status": "ok" if problem is None else "unhealthy"}
        if problem is not None:
            body["reason"] = problem
        return Response(json.dumps(body) + "\n", 200 if problem is None else 503,
                        media_type="application/json", headers={"Cache-Control": "no-store"})

    async def scrape(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(await metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    routes: list[Any] = [Route("/healthz", healthz), Route("/metrics", scrape)]
    routes += [Mount(path, app=app) for path, app in mounts]
    app: ASGIApp = Starlette(routes=routes)
    return BearerGuard(app, token) if token else app


def bind(listen: str) -> socket.socket:
    """The listening socket, bound before anything else starts: a taken port is a clear error."""
    where = parse_listen(listen)
    host, port = where.host, where.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(f"service.listen: cannot listen on {listen}: {exc.strerror or exc}"
                          ) from None  # fmt: skip


class Endpoint:
    """uvicorn serving ``app`` on a bound socket, as a task of the running loop."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the service owns its signals
                yield

        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                server_header=False, timeout_graceful_shutdown=2,
                                limit_concurrency=64, timeout_keep_alive=5)  # fmt: skip
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # not its start and stop
        self.sock = sock
        self.server = Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="endpoint")
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()  # its error, if it failed to start
            raise ConfigError(f"service.listen: the endpoint on {self.address} did not start")

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.server.should_exit = True
            with contextlib.suppress(Exception):
                await self.task
        self.sock.close()
