"""``service.event_loop``: which loop the commands run on, and what happens without uvloop."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from aggregator.config.settings import load_settings
from aggregator.errors import ConfigError
from aggregator.runtime import eventloop
from tests.feedgen import Item, rss
from tests.httpserver import TestServer
from tests.loopfixtures import uvloop_or_skip
from tests.test_cli_newcomer import config, loaded_modules


async def loop_module() -> str:
    """The package of the loop running this coroutine: ``uvloop`` or ``asyncio``."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def hide_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on Windows or PyPy, where it does not build: ``import uvloop`` fails."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


def test_auto_and_uvloop_run_on_uvloop_and_asyncio_on_asyncios_own() -> None:
    uvloop_or_skip()
    assert eventloop.run(loop_module()) == "uvloop"  # auto, the default
    assert eventloop.run(loop_module(), "uvloop") == "uvloop"
    assert eventloop.run(loop_module(), "asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_uvloop_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide_uvloop(monkeypatch)
    assert eventloop.run(loop_module(), "auto") == "asyncio"
    coroutine = loop_module()
    with pytest.raises(ConfigError, match=r"service\.event_loop: uvloop is not installed"):
        eventloop.run(coroutine, "uvloop")
    assert coroutine.cr_frame is None  # closed, not left to warn "never awaited"


def test_the_setting_defaults_to_auto_and_refuses_a_missing_or_unknown_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: []\n", encoding="utf-8")
    assert load_settings(path, env={}).service.event_loop == "auto"
    path.write_text("service:\n  event_loop: trio\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r":2: service\.event_loop: .*'auto'"):
        load_settings(path, env={})
    hide_uvloop(monkeypatch)
    path.write_text("service:\n  event_loop: uvloop\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r":2: service\.event_loop: uvloop is not installed"):
        load_settings(path, env={})
    path.write_text("service:\n  event_loop: asyncio\n", encoding="utf-8")
    assert load_settings(path, env={}).service.event_loop == "asyncio"


@pytest.mark.parametrize("setting", ["", "service:\n  event_loop: asyncio\n"],
                         ids=["auto", "asyncio"])
def test_poll_runs_on_the_loop_the_configuration_names(
    tmp_path: Path, http_server: TestServer, setting: str
) -> None:
    uvloop_or_skip()
    http_server.route("/feed.xml", body=rss([Item(1, http_server.base_url)]))
    cfg = Path(config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", http_server.url("/feed.xml")))
    cfg.write_text(cfg.read_text(encoding="utf-8") + setting, encoding="utf-8")
    loaded = loaded_modules(tmp_path, "--config", str(cfg), "poll", "--once")
    assert "sqlalchemy" in loaded  # it polled
    assert ("uvloop" in loaded) is (not setting)


def test_the_network_tests_fixture_runs_asyncio_run_on_the_loop_it_names(
    event_loops: str,
) -> None:
    """``tests/loopfixtures.py`` is what puts the HTTP tests on uvloop: it must really do so."""
    assert asyncio.run(loop_module()) == event_loops
