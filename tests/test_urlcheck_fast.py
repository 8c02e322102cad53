"""The canonical-URL fast path (``simple_url``) agrees with httpx and ``url_problem`` wherever it
answers, and the HTTP client's targets built from it equal those built the general way."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fetch.http import _general_target, _simple_target
from aggregator.fetch.politeness import host_key
from aggregator.fetch.urlcheck import general_problem, simple_url, url_problem

TRICKY = [
    "http://127.42.0.1:46245/feeds/0.xml",
    "https://example.com/feed.xml",
    "https://blog.example.co.uk/a/b/c?x=1&y=%2F&z=a:b@c",
    "http://9gag.com/rss",
    "http://1.2.3.4a/x",
    "http://255.255.255.255/",
    "http://0.0.0.0:1/",
    "https://a-b.example/x?",
    "https://a-b.example/x??y",
    "https://example.com/%zz",
    "https://example.com/%2e%2e/x",
    "https://example.com/a/./b",
    "https://example.com/a/../b",
    "https://example.com/.well-known/x",
    "https://example.com/a/.",
    "https://Example.com/a",
    "HTTP://example.com/a",
    "http://example.com:80/a",
    "https://example.com:443/a",
    "http://example.com:443/a",
    "https://example.com:80/a",
    "http://example.com:0/a",
    "http://example.com:65535/a",
    "http://example.com:65536/a",
    "http://example.com:99999/a",
    "http://example.com:08080/a",
    "http://example.com",
    "http://example.com?x",
    "http://example.com/a#frag",
    "http://user:pw@example.com/a",
    "http://[::1]:8080/a",
    "http://1.2.3/x",
    "http://01.2.3.4/x",
    "http://256.2.3.4/x",
    "http://1.2.3.4.5/x",
    "http://a.1/x",
    "http://xn--bcher-kva.example/x",
    "http://xn--zz.example/x",
    "http://-a.example/x",
    "http://a-.example/x",
    "http://a..example/x",
    "http://a_b.example/x",
    "http://" + "a" * 63 + ".example/x",
    "http://" + "a" * 64 + ".example/x",
    "http://" + ".".join(["a" * 60] * 5) + "/x",
    "http://example.com/a b",
    "http://example.com/a\tb",
    "http://example.com/a\"b",
    "http://example.com/{x}",
    "http://example.com/a`b",
    "http://example.com/a|b",
    "http://example.com/a\\b",
    "http://example.com/é",
    "http://bücher.example/x",
    "ftp://example.com/x",
    "https://example.com/" + "a" * 3000,
]


def check(url: str) -> bool:
    """Where the fast path answers, its answer is what the general path gives."""
    simple = simple_url(url)
    fast = _simple_target(url)
    assert (simple is None) == (fast is None)
    if simple is None:
        return False
    parsed = httpx.URL(url)
    assert str(parsed) == url
    assert parsed.scheme == simple.scheme
    assert parsed.raw_host == simple.host.encode()
    assert parsed.port == simple.port
    assert parsed.raw_path == simple.target.encode()
    assert general_problem(url) is None and url_problem(url) is None
    general = _general_target(url)
    assert fast is not None
    assert (fast.text, fast.scheme, fast.core, fast.host_header, fast.problem) == (
        general.text, general.scheme, general.core, general.host_header, general.problem
    )
    assert fast.url == general.url
    assert host_key(url) == (urlsplit(url).hostname or "").lower()
    return True


@pytest.mark.parametrize("url", TRICKY)
def test_the_fast_path_agrees_with_httpx_where_it_answers(url: str) -> None:
    check(url)


def test_the_fast_path_takes_ordinary_feed_urls() -> None:
    taken = [u for u in TRICKY if simple_url(u) is not None]
    assert "http://127.42.0.1:46245/feeds/0.xml" in taken
    assert "https://blog.example.co.uk/a/b/c?x=1&y=%2F&z=a:b@c" in taken
    for declined in ("https://Example.com/a", "http://example.com:80/a", "http://01.2.3.4/x",
                     "https://example.com/a/../b", "http://a.b/x#f", "http://example.com"):
        assert simple_url(declined) is None


ALPHABET = "abcxyz019-.:/?#%@[]_~!$&'()*+,;=AZ é\t"


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "http:/"]),
    st.text(ALPHABET, max_size=30),
    st.text(ALPHABET, max_size=30),
)
def test_the_fast_path_agrees_with_httpx_on_generated_urls(
    scheme: str, authority: str, rest: str
) -> None:
    check(scheme + authority + rest)


@settings(max_examples=2000, deadline=None)
@given(
    st.from_regex(r"(https?)://([a-z0-9-]{1,8}\.){0,3}[a-z0-9-]{1,8}(:[0-9]{1,6})?"
                  r"(/[a-zA-Z0-9._~%:@!$&'()*+,;=/-]{0,12}(\?[a-zA-Z0-9._~%:@!$&'()*+,;=/?-]{0,8})?)?",
                  fullmatch=True),
)
def test_the_fast_path_agrees_with_httpx_on_url_shaped_text(url: str) -> None:
    try:
        check(url)
    except httpx.InvalidURL:
        assert simple_url(url) is None
