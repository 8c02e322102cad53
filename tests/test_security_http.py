"""The SSRF guard end to end: a guarded client against a real server on loopback never gets a byte.

The server listens on 127.0.0.1 (and 127.0.0.2); with the guard on, every spelling of it must be
refused after resolution and before connecting, on the first request and on every redirect hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from aggregator.config.settings import HttpSettings
from aggregator.errors import FetchError
from aggregator.fetch.http import HttpClient, Response
from aggregator.fetch.netguard import ALLOW_HINT
from tests.httpserver import TestServer

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's


def guarded(**overrides: Any) -> HttpSettings:
    """The default: allow_private_networks is False."""
    return HttpSettings.model_validate({"timeout": 2, "connect_timeout": 1} | overrides)


def fetch(
    url: str,
    config: HttpSettings,
    resolver: Callable[[str, int], list[str]] | None = None,
) -> Response:
    async def go() -> Response:
        async with HttpClient(config, resolver=resolver) as client:
            return await client.get(url)

    return asyncio.run(go())


def refused(url: str, config: HttpSettings | None = None, **kwargs: Any) -> str:
    with pytest.raises(FetchError) as caught:
        fetch(url, config or guarded(), **kwargs)
    return str(caught.value)


def test_settings_default_to_guarded() -> None:
    assert HttpSettings().allow_private_networks is False


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("127.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),
        ("0x7f000001", "127.0.0.1", "loopback"),
        ("017700000001", "127.0.0.1", "loopback"),  # octal, read by inet_aton
        ("0177.1", "127.0.0.1", "loopback"),
        ("0x7f.0.0.1", "127.0.0.1", "loopback"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("[::1]", "::1", "loopback"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "IPv4-mapped loopback"),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1", "NAT64 loopback"),
    ],
)
def test_every_spelling_of_loopback_is_refused(
    http_server: TestServer, host: str, address: str, reason: str
) -> None:
    http_server.route("/feed", body=b"secret")
    url = f"http://{host}:{http_server.port}/feed"
    assert refused(url) == f"fetch: blocked address {address} ({reason}) for {url}{ALLOW_HINT}"
    assert http_server.requests == []


def test_octal_dotted_quad_is_refused_as_an_invalid_url(http_server: TestServer) -> None:
    url = f"http://0177.0.0.1:{http_server.port}/feed"
    assert refused(url).startswith("fetch: invalid URL")
    assert http_server.requests == []


def test_localhost_is_refused_whatever_it_resolves_to(http_server: TestServer) -> None:
    url = f"http://localhost:{http_server.port}/feed"
    message = refused(url)
    assert (
        message.startswith("fetch: blocked address ")
        and "(loopback) for http://localhost" in message
    )
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "carrier-grade NAT"),
        ("fd00::1", "unique local"),
    ],
)
def test_names_resolving_to_private_networks_are_refused(address: str, reason: str) -> None:
    """No packet leaves: the resolver's answer alone decides (these addresses are not reachable)."""
    url = "http://internal.test/latest/meta-data/"
    message = refused(url, resolver=lambda host, port: [address])
    assert message == f"fetch: blocked address {address} ({reason}) for {url}{ALLOW_HINT}"


def test_rebinding_resolver_is_refused_at_connect(http_server: TestServer) -> None:
    """A name answering a public address first and loopback second is refused as a whole."""
    http_server.route("/feed", body=b"secret")
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.215.14", "127.0.0.1"]

    url = f"http://rebind.test:{http_server.port}/feed"
    assert refused(url, resolver=rebinding) == (
        f"fetch: blocked address 127.0.0.1 (loopback) for {url}{ALLOW_HINT}"
    )
    assert calls == ["rebind.test"] and http_server.requests == []


def test_resolver_is_consulted_at_connect_not_before(http_server: TestServer) -> None:
    """The address connected to is the one vetted: an allow-listed answer reaches the server."""
    http_server.route("/feed", body=b"ok")
    config = guarded(allowed_networks=["127.0.0.2/32"])
    url = f"http://feeds.test:{http_server.port}/feed"
    http_server.url("/", host="127.0.0.2")  # start the 127.0.0.2 listener
    response = fetch(url, config, resolver=lambda host, port: ["127.0.0.2"])
    assert response.body == b"ok"
    assert http_server.requests[0].host == "127.0.0.2"
    assert http_server.requests[0].headers["host"] == f"feeds.test:{http_server.port}"


def test_allowed_host_redirecting_to_loopback_is_refused_on_the_hop(
    http_server: TestServer,
) -> None:
    start = http_server.url("/start", host="127.0.0.2")
    target = http_server.url("/admin")  # 127.0.0.1: not allow-listed
    http_server.redirect("/start", target, status=302)
    http_server.route("/admin", body=b"secret")
    message = refused(start, guarded(allowed_networks=["127.0.0.2/32"]))
    assert message == (
        f"fetch: blocked address 127.0.0.1 (loopback) for {target} (redirected from {start})"
        f"{ALLOW_HINT}"
    )
    assert [r.path for r in http_server.requests] == ["/start"]


def test_public_page_redirecting_to_a_metadata_name_is_refused(http_server: TestServer) -> None:
    start = f"http://public.test:{http_server.port}/feed"
    http_server.redirect("/feed", "http://metadata.test/latest/", status=301)

    def resolver(host: str, port: int) -> list[str]:
        return {"public.test": ["127.0.0.2"], "metadata.test": ["169.254.169.254"]}[host]

    http_server.url("/", host="127.0.0.2")
    message = refused(start, guarded(allowed_networks=["127.0.0.2/32"]), resolver=resolver)
    assert message.startswith(
        "fetch: blocked address 169.254.169.254 (link-local) for http://metadata"
    )


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://x/"])
def test_redirect_to_other_schemes_is_refused(http_server: TestServer, location: str) -> None:
    start = http_server.url("/start", host="127.0.0.2")
    http_server.redirect("/start", location)
    message = refused(start, guarded(allowed_networks=["127.0.0.2/32"]))
    scheme = location.split(":", 1)[0]
    assert message == f"fetch: redirect to unsupported scheme {scheme!r} for {start}"


def test_allow_private_networks_turns_the_guard_off(http_server: TestServer) -> None:
    http_server.route("/feed", body=b"intranet")
    for host in ("127.0.0.1", "127.1", "localhost"):
        url = f"http://{host}:{http_server.port}/feed"
        assert fetch(url, guarded(allow_private_networks=True)).body == b"intranet"


def test_unresolvable_name_is_a_network_error() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    message = refused("http://nowhere.test/feed", resolver=nxdomain)
    assert message.startswith("fetch: network error (ConnectError: cannot resolve nowhere.test")


def test_with_a_proxy_each_hop_name_is_vetted_before_it_is_sent(http_server: TestServer) -> None:
    """The proxy connects, not us: the guard checks what the target name resolves to, first."""
    http_server.route("http://public.test/feed", body=b"via proxy")
    http_server.redirect("http://public.test/moved", "http://internal.test/admin")
    config = guarded(proxy=http_server.base_url)
    names = {"public.test": ["93.184.215.14"], "internal.test": ["10.0.0.1"]}

    def resolver(host: str, port: int) -> list[str]:
        return names[host]

    assert fetch("http://public.test/feed", config, resolver).body == b"via proxy"
    message = refused("http://public.test/moved", config, resolver=resolver)
    assert message.startswith("fetch: blocked address 10.0.0.1 (private) for http://internal.test")
    assert [r.path for r in http_server.requests] == [
        "http://public.test/feed",
        "http://public.test/moved",
    ]
