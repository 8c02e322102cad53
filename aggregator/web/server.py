"""Serving the web view with uvicorn: ``serve`` for ``aggregator serve`` (blocking, stops on
SIGINT/SIGTERM), ``serve_until`` for ``run`` with ``service.web: true`` (inside the service's
event loop, stopping when the service does; the service keeps its signal handlers).

The socket is bound here, before uvicorn starts, so that the address actually served (port 0:
the system's choice) is known and announced, and a port already taken is one clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn

from aggregator.config.listen import Listen, check_exposure, parse_listen
from aggregator.errors import ConfigError
from aggregator.web.app import LOOPBACK_HOSTS, create_app
from storage.store import Store

if TYPE_CHECKING:
    from aggregator.config import Settings
    from aggregator.config.settings import EventLoopChoice

Announce = Callable[[str], None]


def bind(listen: Listen) -> socket.socket:
    """A listening socket on ``listen`` (connections wait in its backlog until uvicorn serves
    them), or a one-line error."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"web: cannot listen on {listen.host}:{listen.port}: "
                          f"{exc.strerror or exc}") from None  # fmt: skip
    return sock


def _config(store: Store, listen: Listen, token: str | None, verbose: int,
            loop: EventLoopChoice) -> uvicorn.Config:  # fmt: skip
    # On loopback, only loopback names are accepted (DNS rebinding); beyond, the token guards.
    hosts = [*LOOPBACK_HOSTS, listen.host] if listen.loopback else None
    app = create_app(store, token=token, hosts=hosts)
    # uvicorn's loop names are service.event_loop's: `serve` runs on the loop `run` runs on.
    return uvicorn.Config(app, log_config=None, access_log=verbose > 0, server_header=False,
                          lifespan="off", proxy_headers=False, loop=loop,
                          timeout_graceful_shutdown=5)  # fmt: skip


class WebView:
    """The view, checked, opened and bound, not yet serving: ``open`` raises at once (a refused
    address, a taken port, no archive), so a caller can fail before it starts anything else."""

    def __init__(self, store: Store, sock: socket.socket, config: uvicorn.Config) -> None:
        self.store, self.sock, self.config = store, sock, config
        self.url = ""

    @classmethod
    def open(cls, settings: Settings, listen: Listen, token: str | None, public: bool,
             verbose: int = 0) -> WebView:  # fmt: skip
        check_exposure("web", listen, token, public)
        store = Store.open(settings.database, settings.timeouts(), read_only=True)
        try:
            sock = bind(listen)
        except BaseException:
            store.close()
            raise
        view = cls(store, sock, _config(store, listen, token, verbose,
                                        settings.service.event_loop))
        view.url = listen.url(sock.getsockname()[1])
        return view

    @classmethod
    def from_settings(cls, settings: Settings, verbose: int = 0) -> WebView:
        """As ``service.web_listen``, ``listen_token`` and ``listen_public`` say."""
        service = settings.service
        return cls.open(settings, parse_listen(service.web_listen), service.listen_token,
                        service.listen_public, verbose)  # fmt: skip

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (``aggregator serve``)."""
        _Alone(self.config).run(sockets=[self.sock])

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve inside a running service until ``stop`` is set; the service keeps its signals."""
        server = _Embedded(self.config)
        serving = asyncio.create_task(server.serve(sockets=[self.sock]))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        stopped.cancel()
        await serving

    def close(self) -> None:
        self.sock.close()
        self.store.close()

    def __enter__(self) -> WebView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(settings: Settings, listen: Listen, token: str | None, public: bool,
          announce: Announce, verbose: int = 0) -> None:  # fmt: skip
    """``aggregator serve``: until SIGINT or SIGTERM."""
    with WebView.open(settings, listen, token, public, verbose) as view:
        announce(view.url)
        view.run()


async def serve_until(settings: Settings, stop: asyncio.Event, announce: Announce,
                      verbose: int = 0) -> None:  # fmt: skip
    """``run`` with ``service.web: true``: serve ``service.web_listen`` until ``stop`` is set.
    (A caller that must fail before starting opens ``WebView.from_settings`` itself.)"""
    with WebView.from_settings(settings, verbose) as view:
        announce(view.url)
        await view.serve_until(stop)


class _Alone(uvicorn.Server):
    """``serve``: SIGINT and SIGTERM stop the server gracefully, and the command then exits 0
    (uvicorn's own handling raises the signal again once stopped: death by SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _Embedded(uvicorn.Server):
    """A uvicorn server that leaves the signals to the service it runs in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
