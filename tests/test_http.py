"""The HTTP client against a real server on 127.0.0.1: validators, encodings, redirects."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import pytest

from aggregator.config.settings import HttpSettings
from aggregator.errors import FetchError
from aggregator.fetch.http import HttpClient, Response
from tests.httpserver import RecordedRequest, Route, TestServer

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's

LAST_MODIFIED = "Wed, 21 Oct 2026 07:28:00 GMT"


def settings(**overrides: Any) -> HttpSettings:
    """Loopback is private: every test here opts out of the SSRF guard explicitly."""
    base = {"allow_private_networks": True, "timeout": 2, "connect_timeout": 1}
    return HttpSettings.model_validate(base | {"user_agent": "test-agent/1.0"} | overrides)


def fetch(url: str, config: HttpSettings | None = None, **kwargs: Any) -> Response:
    async def go() -> Response:
        async with HttpClient(config or settings()) as client:
            return await client.get(url, **kwargs)

    return asyncio.run(go())


def test_plain_get_returns_value_and_sends_user_agent(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"<rss/>", headers={"Content-Type": "application/rss+xml"})
    response = fetch(http_server.url("/feed"), accept="application/rss+xml")
    assert (response.status, response.body) == (200, b"<rss/>")
    assert response.url == response.final_url == http_server.url("/feed")
    assert response.header("Content-Type") == "application/rss+xml"
    assert response.redirects == () and response.elapsed > 0
    request = http_server.requests[0]
    assert request.headers["user-agent"] == "test-agent/1.0"
    assert request.headers["accept"] == "application/rss+xml"
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in request.headers


def test_etag_round_trip_gives_304(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"data", etag='"v1"')
    first = fetch(http_server.url("/feed"))
    assert first.status == 200 and first.header("etag") == '"v1"'
    second = fetch(http_server.url("/feed"), etag='"v1"')
    assert (second.status, second.body) == (304, b"")
    assert http_server.requests[1].headers["if-none-match"] == '"v1"'
    assert fetch(http_server.url("/feed"), etag='"old"').status == 200


def test_last_modified_round_trip_gives_304(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"data", last_modified=LAST_MODIFIED)
    assert fetch(http_server.url("/feed")).header("last-modified") == LAST_MODIFIED
    response = fetch(http_server.url("/feed"), last_modified=LAST_MODIFIED)
    assert response.status == 304
    assert http_server.requests[1].headers["if-modified-since"] == LAST_MODIFIED


def test_gzip_body_is_decoded(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"<rss>" + b"x" * 5000 + b"</rss>", gzip=True)
    response = fetch(http_server.url("/feed"))
    assert response.body == b"<rss>" + b"x" * 5000 + b"</rss>"
    assert response.header("content-encoding") == "gzip"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_body_is_decoded_wrapped_or_raw(http_server: TestServer, wbits: int) -> None:
    packer = zlib.compressobj(wbits=wbits)
    packed = packer.compress(b"hello deflate " * 100) + packer.flush()
    http_server.route("/d", body=packed, headers={"Content-Encoding": "deflate"})
    assert fetch(http_server.url("/d")).body == b"hello deflate " * 100


def test_concatenated_gzip_members_are_all_decoded(http_server: TestServer) -> None:
    body = gzip.compress(b"first ") + gzip.compress(b"second")
    http_server.route("/g", body=body, headers={"Content-Encoding": "gzip"})
    assert fetch(http_server.url("/g")).body == b"first second"


def test_corrupt_gzip_and_unknown_encoding_are_clear_errors(http_server: TestServer) -> None:
    http_server.route("/bad", body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    http_server.route("/br", body=b"??", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match=r"^fetch: corrupt gzip body .* for http://127"):
        fetch(http_server.url("/bad"))
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        fetch(http_server.url("/br"))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_status_is_followed(http_server: TestServer, status: int) -> None:
    http_server.redirect("/old", "/new", status=status)
    http_server.route("/new", body=b"moved")
    response = fetch(http_server.url("/old"))
    assert (response.status, response.body) == (200, b"moved")
    assert response.redirects == (http_server.url("/new"),)
    assert response.redirect_statuses == (status,)
    assert response.permanent_redirect == (
        http_server.url("/new") if status in (301, 308) else None
    )


def test_redirect_chain_of_five_is_recorded_hop_by_hop(http_server: TestServer) -> None:
    statuses = [301, 302, 307, 308, 301]
    for i, status in enumerate(statuses):
        http_server.redirect(f"/r{i}", f"/r{i + 1}", status=status)
    http_server.route("/r5", body=b"end")
    response = fetch(http_server.url("/r0"), etag='"e"')
    assert response.body == b"end" and response.final_url == http_server.url("/r5")
    assert response.redirects == tuple(http_server.url(f"/r{i}") for i in range(1, 6))
    assert response.permanent_redirect is None  # 302 and 307 in the chain
    assert all(r.headers.get("if-none-match") == '"e"' for r in http_server.requests)


def test_more_than_five_redirects_is_an_error(http_server: TestServer) -> None:
    for i in range(6):
        http_server.redirect(f"/r{i}", f"/r{i + 1}")
    http_server.route("/r6", body=b"too far")
    with pytest.raises(FetchError, match=r"^fetch: too many redirects \(more than 5\) for http"):
        fetch(http_server.url("/r0"))
    assert http_server.hits("/r6") == 0


def test_redirect_loop_is_an_error(http_server: TestServer) -> None:
    http_server.redirect("/a", "/b")
    http_server.redirect("/b", "/a")
    with pytest.raises(FetchError, match=r"redirect loop at .*/a for "):
        fetch(http_server.url("/a"))
    assert http_server.hits("/a") == 1


def test_relative_and_cross_host_redirects(http_server: TestServer) -> None:
    other = http_server.url("/there", host="127.0.0.2")
    http_server.redirect("/dir/rel", "../abs/there?x=1")
    http_server.redirect("/abs/there?x=1", other)
    http_server.route("/there", body=b"ok")
    response = fetch(http_server.url("/dir/rel"))
    assert response.final_url == other
    assert [r.host for r in http_server.requests] == ["127.0.0.1", "127.0.0.1", "127.0.0.2"]


@pytest.mark.parametrize("status", [404, 410, 500, 502])
def test_error_statuses_are_returned_with_their_body(http_server: TestServer, status: int) -> None:
    http_server.route("/x", status=status, body=b"oops")
    response = fetch(http_server.url("/x"))
    assert (response.status, response.body) == (status, b"oops")


@pytest.mark.parametrize(
    "retry_after", ["120", "Wed, 21 Oct 2026 07:28:00 GMT", "99999999999999", "soon"]
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_returned_intact(
    http_server: TestServer, status: int, retry_after: str
) -> None:
    http_server.route("/busy", status=status, headers={"Retry-After": retry_after})
    response = fetch(http_server.url("/busy"))
    assert response.status == status
    assert response.header("retry-after") == retry_after


def test_repeated_headers_are_kept_and_joined(http_server: TestServer) -> None:
    def handler(request: RecordedRequest) -> Route:
        return Route(body=b"ok", headers={"Cache-Control": "max-age=60", "X-Path": request.path})

    http_server.route("/h", handler=handler)
    response = fetch(http_server.url("/h"))
    assert ("cache-control", "max-age=60") in response.headers
    assert response.header("x-path") == "/h"
    assert all(name == name.lower() for name, _ in response.headers)
    joined = Response("u", "u", 200, (("a", "1"), ("b", "2"), ("a", "3")), b"", 0.0)
    assert joined.header("A") == "1, 3" and joined.header("missing") is None


def test_environment_proxies_are_ignored(
    http_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens, a proxied request would fail
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http_server.route("/feed", body=b"direct")
    assert fetch(http_server.url("/feed")).body == b"direct"


def test_configured_proxy_is_used(http_server: TestServer) -> None:
    """A forward proxy gets the absolute URL; here the test server plays the proxy."""
    target = "http://feeds.example/feed.xml"
    http_server.route(target, body=b"via proxy")
    response = fetch(target, settings(proxy=http_server.base_url))
    assert response.body == b"via proxy"
    assert http_server.requests[0].path == target


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/feed", "gopher://x/", "data:text/plain,hi", "x"],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match=r"^fetch: (unsupported scheme|invalid URL)"):
        fetch(url)


def test_cookies_are_not_kept_between_requests(http_server: TestServer) -> None:
    http_server.route("/set", body=b"", headers={"Set-Cookie": "session=abc; Path=/"})
    http_server.route("/next", body=b"")

    async def go() -> None:
        async with HttpClient(settings()) as client:
            await client.get(http_server.url("/set"))
            await client.get(http_server.url("/next"))

    asyncio.run(go())
    assert "cookie" not in http_server.requests[1].headers


def test_one_client_serves_concurrent_requests(http_server: TestServer) -> None:
    http_server.route("/slow", body=b"ok", delay=0.3)

    async def go() -> list[Response]:
        async with HttpClient(settings()) as client:
            urls = [http_server.url("/slow", host=f"127.0.0.{i}") for i in range(1, 9)]
            return await asyncio.gather(*(client.get(u) for u in urls))

    responses = asyncio.run(go())
    assert [r.body for r in responses] == [b"ok"] * 8


@pytest.mark.parametrize("etag", ['"caf\u00e9"', '"a\r\nX-Injected: 1"', '"nul\x00"'])
def test_unsendable_validators_are_dropped_not_fatal(http_server: TestServer, etag: str) -> None:
    http_server.route("/feed", body=b"full", etag='"v1"')
    response = fetch(http_server.url("/feed"), etag=etag, last_modified=LAST_MODIFIED)
    assert response.status == 200
    request = http_server.requests[0]
    assert "if-none-match" not in request.headers and "x-injected" not in request.headers
    assert request.headers["if-modified-since"] == LAST_MODIFIED
