"""A URL no request can reach is refused the same way by check-config and by the HTTP client.

Issue 10: links with a malformed IDN host (``http://xn--.invalid/``) or a port of 99999 reached
httpx, asyncio or the resolver and came back as ``IDNAError`` or ``OverflowError``; a feed URL
like that was accepted by ``check-config`` and failed at every poll.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config.settings import HttpSettings, load_settings
from aggregator.errors import ConfigError, FetchError
from aggregator.fetch.http import HttpClient, _checked
from aggregator.fetch.urlcheck import url_problem
from tests.httpserver import TestServer

ROOT = Path(__file__).parent.parent

UNREACHABLE = [
    ("http://xn--.invalid/", "bad IDN label 'xn--'"),
    ("http://XN--.invalid/news/1.html", "bad IDN label 'xn--'"),
    ("http://www.xn--zz.example/", "bad IDN label 'xn--zz'"),
    ("http://example.com:99999/feed", "bad port 99999"),
    ("http://example.com:0/feed", "bad port 0"),
    ("http://example.com:http/feed", "bad port http"),
    ("http://[::1/feed", "malformed URL"),
    ("http://[::g]/feed", "malformed"),
    ("http://999.1.1.1/feed", "malformed IPv4 address"),
    ("http://a..b/feed", "empty or over-long label"),
    (f"http://{'a' * 64}.example/", "empty or over-long label"),
    ("http://exa mple.com/", "characters no host name holds"),
    ("http://%zz/", "characters no host name holds"),
    ("http://é\u200d.example/", "malformed international host"),
    ("ftp://example.com/feed", "unsupported scheme 'ftp'"),
    ("file:///etc/passwd", "unsupported scheme 'file'"),
    ("feed.xml", "unsupported scheme '(none)'"),
    ("http:///feed", "no host"),
]

REACHABLE = [
    "https://example.com/feed",
    "HTTP://EXAMPLE.COM:8080/feed?x=1#f",
    "http://münchen.example/feed",
    "http://xn--mnchen-3ya.example/feed",
    "http://my_host.example.com/",  # underscores: invalid in DNS host names, served all the same
    "http://-leading.blogspot.example/",  # hyphens at an edge: resolvers accept them
    "http://example.com./",
    "http://[2001:db8::1]:8443/",
    # Forms of 127.0.0.1: reachable URLs, which the SSRF guard refuses after resolution.
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://[::ffff:127.0.0.1]/",
]


@pytest.mark.parametrize(("url", "why"), UNREACHABLE)
def test_unreachable_urls_are_named_with_the_reason(url: str, why: str) -> None:
    problem = url_problem(url)
    assert problem is not None and why in problem


@pytest.mark.parametrize("url", REACHABLE)
def test_reachable_urls_pass(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(("url", "why"), UNREACHABLE)
def test_the_http_client_refuses_them_with_a_fetch_error(url: str, why: str) -> None:
    """Nothing but FetchError, and before any connection: these used to raise IDNAError or
    OverflowError out of the client."""

    async def get() -> None:
        async with HttpClient(HttpSettings(allow_private_networks=True, timeout=5)) as client:
            await client.get(url)

    with pytest.raises(FetchError) as raised:
        asyncio.run(get())
    message = str(raised.value)
    assert message.startswith(("fetch: invalid URL", "fetch: unsupported scheme"))
    assert "\n" not in message


@pytest.mark.parametrize("target", ["http://xn--.invalid/x", "http://127.0.0.1:99999/x"])
def test_a_redirect_to_an_unreachable_url_is_a_fetch_error(
    http_server: TestServer, target: str
) -> None:
    http_server.redirect("/hop", target)
    start = http_server.url("/hop")

    async def get() -> None:
        async with HttpClient(HttpSettings(allow_private_networks=True, timeout=5)) as client:
            await client.get(start)

    with pytest.raises(FetchError, match=rf"^fetch: redirect to invalid URL \S+ for {start}: "):
        asyncio.run(get())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60).map(lambda s: "http://" + s))
def test_url_checks_raise_only_their_own_error(url: str) -> None:
    """Any text: the pure check answers, the client's check raises FetchError or passes, and
    what the pure check accepts, the client's check accepts too."""
    problem = url_problem(url)
    try:
        _checked(url, url)
    except FetchError:
        return
    assert problem is None or "IPv6" in problem or "port" in problem, (url, problem)


def write_config(tmp_path: Path, *urls: str) -> Path:
    feeds = "".join(f"  - url: {url}\n" for url in urls)
    path = tmp_path / "feeds.yaml"
    path.write_text(f"database: sqlite:///x.db\nfeeds:\n{feeds}", encoding="utf-8")
    return path


@pytest.mark.parametrize(("url", "why"), UNREACHABLE)
def test_the_configuration_refuses_a_feed_no_request_can_reach(
    tmp_path: Path, url: str, why: str
) -> None:
    config = write_config(tmp_path, "https://example.com/ok.xml", url)
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert str(raised.value).startswith(f"config: {config}:4: feeds[1].url: bad URL {url!r}: ")
    assert why in str(raised.value)


@pytest.mark.parametrize(("url", "why"), [UNREACHABLE[0], UNREACHABLE[3], UNREACHABLE[14]])
def test_check_config_exits_2_with_one_line_naming_the_feed_and_line(
    tmp_path: Path, url: str, why: str
) -> None:
    config = write_config(tmp_path, "https://example.com/ok.xml", url)
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "check-config"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"config: {config}:4: feeds[1].url: bad URL {url!r}: ")
    assert why in line
    assert "Traceback" not in done.stderr
