"""``aggregator serve`` and the listen rule (issue 16): where it binds, who may reach it, that it
announces the address it serves and stops cleanly on SIGTERM, that it leaves the database file
untouched; and ``serve_until``, the form ``run`` embeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from aggregator.config import Settings
from aggregator.config.listen import Listen, check_exposure, parse_listen
from aggregator.errors import ConfigError
from storage.store import Store
from tests import webfixtures as wf

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("text", "host", "port", "loopback"), [
    ("127.0.0.1:8322", "127.0.0.1", 8322, True),
    ("127.3.4.5:80", "127.3.4.5", 80, True),
    ("localhost:0", "localhost", 0, True),
    ("[::1]:8322", "::1", 8322, True),
    ("0.0.0.0:8322", "0.0.0.0", 8322, False),
    ("[::]:8322", "::", 8322, False),
    ("192.168.1.10:8080", "192.168.1.10", 8080, False),
    ("archive.example:443", "archive.example", 443, False),
])  # fmt: skip
def test_listen_addresses_parse(text: str, host: str, port: int, loopback: bool) -> None:
    listen = parse_listen(text)
    assert (listen.host, listen.port, listen.loopback) == (host, port, loopback)


@pytest.mark.parametrize("text", ["8322", "127.0.0.1", "127.0.0.1:", ":8322", "::1:8322",
                                  "[::1]8322", "[zz::1]:80", "127.0.0.1:65536", "a b:80"])
def test_bad_listen_addresses_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="bad listen address"):
        parse_listen(text)


def test_beyond_loopback_a_token_or_the_public_flag_is_needed() -> None:
    check_exposure("web", Listen("127.0.0.1", 8322), None, False)
    check_exposure("web", Listen("0.0.0.0", 8322), "t" * 16, False)
    check_exposure("web", Listen("0.0.0.0", 8322), None, True)
    with pytest.raises(ConfigError, match=r"service\.listen_token"):
        check_exposure("web", Listen("0.0.0.0", 8322), None, False)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    with Store.open(url) as store:
        wf.build(store)
    return url


def _aggregator(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def served(database: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(_aggregator("--database", database, "serve", "--listen",
                                        "127.0.0.1:0"), stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=ROOT)  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving the archive read-only at http://127.0.0.1:" in line, line
    url = line.split(" at ", 1)[1].split(" ", 1)[0]
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_answers_then_stops_cleanly_on_sigterm(
    served: tuple[subprocess.Popen[str], str], database: str
) -> None:
    proc, url = served
    path = Path(database.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for page in ("", "feed/1", "feed/1?page=2", "item/1", "item/1/revision/2", "feeds/all.atom"):
        with urllib.request.urlopen(url + page, timeout=30) as answer:
            assert answer.status == 200, page
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # read-only: not a byte


def test_serve_refuses_an_open_address_without_a_token(database: str) -> None:
    done = subprocess.run(_aggregator("--database", database, "serve", "--listen", "0.0.0.0:0"),
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "web: listening on 0.0.0.0:0 lets other machines read the archive" in done.stderr
    bad = subprocess.run(_aggregator("--database", database, "serve", "--listen", "8322"),
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "serve: --listen: bad listen address '8322'" in bad.stderr


def test_serve_without_an_archive_says_so(tmp_path: Path) -> None:
    done = subprocess.run(_aggregator("--database", f"sqlite:///{tmp_path / 'none.db'}", "serve"),
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60)
    assert done.returncode == 3 and "no archive at" in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_run_with_service_web_serves_the_view_beside_the_service(database: str) -> None:
    """``run``'s wiring: the view is bound before the service starts, serves beside it
    (``Daemon.run_until_signalled``'s ``beside``) and stops when it does."""
    from aggregator.cli.serving import web_view_for_run
    from aggregator.runtime.daemon import Daemon
    from aggregator.runtime.worker import Totals

    settings = _web_settings(database)
    seen: list[int] = []

    class Service:  # stands for the daemon: reads the view, then stops as on SIGTERM
        async def run(self, stop: asyncio.Event) -> Totals:
            answer = await asyncio.to_thread(urllib.request.urlopen, web.url, timeout=30)
            seen.append(answer.status)
            return Totals()

    with web_view_for_run(settings, 0) as web:
        assert web is not None
        asyncio.run(Daemon.run_until_signalled(cast(Daemon, Service()), web.serve_until))
    assert seen == [200]
    with web_view_for_run(Settings(database=database), 0) as off:
        assert off is None  # service.web is off by default


def _web_settings(database: str) -> Settings:
    service = Settings().service.model_copy(update={"web": True, "web_listen": "127.0.0.1:0"})
    return Settings(database=database).model_copy(update={"service": service})


def test_serve_until_runs_inside_a_service_and_stops_with_it(database: str) -> None:
    """What ``run`` does with ``service.web: true``: the view serves in the service's loop and
    stops when the service's stop event is set."""
    from aggregator.web import serve_until

    settings = _web_settings(database)
    announced: list[str] = []

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(serve_until(settings, stop, announced.append))
        while not announced:
            await asyncio.sleep(0.01)
        answer = await asyncio.to_thread(urllib.request.urlopen, announced[0], timeout=30)
        stop.set()
        await asyncio.wait_for(task, 30)
        return int(answer.status)

    assert asyncio.run(scenario()) == 200


@pytest.mark.parametrize("choice", ["auto", "asyncio", "uvloop"])
def test_the_view_runs_on_the_loop_the_service_names(database: str, choice: str) -> None:
    """``serve`` hands ``service.event_loop`` to uvicorn, whose loop names are the same."""
    from aggregator.web.server import WebView

    service = Settings().service.model_copy(update={"event_loop": choice,
                                                    "web_listen": "127.0.0.1:0"})
    settings = Settings(database=database).model_copy(update={"service": service})
    with WebView.from_settings(settings) as view:
        assert view.config.loop == choice
