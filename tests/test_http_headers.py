"""Request headers built from stored validators are always sendable (servers chose them)."""

from __future__ import annotations

import h11
from hypothesis import given
from hypothesis import strategies as st

from aggregator.fetch.response import Response, request_headers, size_text


@given(st.text(), st.text(), st.text())
def test_whatever_the_validators_the_request_head_is_legal(
    etag: str, last_modified: str, accept: str
) -> None:
    headers = request_headers(etag, last_modified, accept)
    h11.Request(method="GET", target="/", headers=[("Host", "x"), *headers.items()])
    if etag.strip(" \t").isascii() and etag.strip(" \t").isprintable() and etag.strip(" \t"):
        assert headers["If-None-Match"] == etag.strip(" \t")


def test_validators_lose_surrounding_blanks_only() -> None:
    assert request_headers(' "v1" ', None, None) == {"If-None-Match": '"v1"'}
    assert request_headers("", "", "") == {}
    assert request_headers('W/"a b"', "Wed, 21 Oct 2026 07:28:00 GMT", "*/*") == {
        "If-None-Match": 'W/"a b"',
        "If-Modified-Since": "Wed, 21 Oct 2026 07:28:00 GMT",
        "Accept": "*/*",
    }


def test_permanent_redirect_needs_every_hop_permanent() -> None:
    def response(*statuses: int) -> Response:
        hops = tuple(f"https://b.example/{i}" for i in range(len(statuses)))
        return Response("https://a.example/", hops[-1] if hops else "https://a.example/", 200,
                        (), b"", 0.1, hops, statuses)  # fmt: skip

    assert response(301, 308).permanent_redirect == "https://b.example/1"
    assert response(301, 302).permanent_redirect is None
    assert response().permanent_redirect is None


def test_sizes_read_like_the_config() -> None:
    sizes = [size_text(n) for n in (15 * 2**20, 500 * 1024, 999)]
    assert sizes == ["15 MiB", "500 KiB", "999 bytes"]
