"""Property: whatever the bytes, parse_feed returns a ParsedFeed or raises ParseError only."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.feeds.parse import ParsedFeed, parse_feed
from tests.feedfixtures import FEED_URL, item, rss

pytestmark = pytest.mark.timeout(60)

FRAGMENTS = [
    b"<?xml version='1.0'?>",
    b"<rss version='2.0'>",
    b"<channel>",
    b"<item>",
    b"</item>",
    b"<entry>",
    b"<feed xmlns='http://www.w3.org/2005/Atom'>",
    b"<!DOCTYPE x [",
    b"]>",
    b"<!ENTITY a 'b'>",
    b"&a;",
    b"&#0;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<guid>",
    b"</guid>",
    b"<pubDate>",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
    b"{",
    b"}",
    b'"items":[',
    b'"version":"https://jsonfeed.org/version/1.1"',
    b"<html>",
    b"<title>",
    b"<link>",
]
HEADERS = st.sampled_from(
    [
        {},
        {"content-type": "application/feed+json"},
        {"content-type": "text/xml; charset=utf-16"},
        {"content-type": "application/rss+xml; charset=bogus"},
        {"Content-Type": "text/html"},
    ]
)


def check(body: bytes, headers: dict[str, str]) -> None:
    try:
        parsed = parse_feed(body, FEED_URL, headers)
    except ParseError as exc:
        assert str(exc).startswith("parse: ") and FEED_URL in str(exc)
        assert "internal error" not in str(exc)  # the safety net in parse_feed caught a bug
        return
    assert isinstance(parsed, ParsedFeed)
    for entry in parsed.entries:
        assert entry.key.split(":", 1)[0] in ("guid", "link", "hash")
        for text in (entry.title, entry.summary, entry.guid, entry.url):
            assert text is None or "\x00" not in text
        for date in (entry.published, entry.updated):
            assert date is None or date.tzinfo is not None
    assert len({e.key for e in parsed.entries}) == len(parsed.entries)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), HEADERS)
def test_random_bytes_raise_only_parse_error(body: bytes, headers: dict[str, str]) -> None:
    check(body, headers)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=20)), max_size=40), HEADERS
)
def test_feedlike_fragments_raise_only_parse_error(
    parts: list[bytes], headers: dict[str, str]
) -> None:
    check(b"".join(parts), headers)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=2000))
def test_corrupting_a_valid_feed_raises_only_parse_error(noise: bytes, at: int) -> None:
    body = rss(
        "".join(item(n, guid=f"g{n}", pubDate="Tue, 20 Apr 2021 17:05:00 +0600") for n in range(3))
    )
    check(body[:at] + noise + body[at:], {})
