"""Guids and links too long for an index entry never cost a feed its poll (issue 10).

PostgreSQL refuses an index entry over about 2,700 bytes. Guids and links are bounded in UTF-8
bytes, not only characters (2,000 Chinese characters are 6,000 bytes), and a canonical URL
whose escaped form is longer than ``MAX_KEY_URL`` becomes a digest of itself, so such entries are
stored, on both databases, once.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from aggregator.feeds.feedmodel import MAX_SHORT, clean_text
from storage.identity import MAX_KEY_URL, normalize_url
from storage.store import Store
from tests.httpserver import TestServer
from tests.test_poll import items_of, poll, settings_for


def _cjk(count: int, seed: int) -> str:
    """Text PostgreSQL cannot compress below its index limit (it compresses repetitive text,
    and even random Cyrillic)."""
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(count))


def _feed(base: str) -> bytes:
    long_guid = _cjk(3_000, 1)  # 9,000 bytes
    long_link = f"{base}/{_cjk(1_500, 2)}"  # 13,500 bytes once escaped
    items = [
        f"<item><title>Long guid</title><guid isPermaLink='false'>{long_guid}</guid>"
        f"<link>{base}/a</link><description>one</description></item>",
        f"<item><title>Long link</title><link>{long_link}</link>"
        "<description>two</description></item>",
        f"<item><title>Plain</title><guid>plain-1</guid><link>{base}/c</link></item>",
    ]
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
            f"<link>{base}/</link>{''.join(items)}</channel></rss>").encode()


def test_entries_with_guids_and_links_past_an_index_limit_are_stored_once(
    http_server: TestServer, store: Store
) -> None:
    http_server.route("/feed.xml", body=_feed(http_server.base_url))
    settings = settings_for(http_server.url("/feed.xml"), database=store.url)
    first = poll(settings, store)
    assert (first.ok, first.failed, first.new_items) == (1, 0, 3)
    assert sorted(i["title"] for i in items_of(store)) == ["Long guid", "Long link", "Plain"]
    second = poll(settings, store)
    assert (second.failed, second.new_items) == (0, 0)
    assert len(items_of(store)) == 3


def test_short_fields_are_bounded_in_bytes_at_a_character_boundary() -> None:
    text = clean_text("ж" * MAX_SHORT, MAX_SHORT)
    assert text is not None and text == "ж" * (MAX_SHORT // 2)
    assert clean_text("a" * 5_000, MAX_SHORT) == "a" * MAX_SHORT


@given(st.text(alphabet="жё€𝄞ab/?=&%", min_size=0, max_size=3_000))
def test_a_canonical_url_is_bounded_and_its_own_normal_form(path: str) -> None:
    key = normalize_url(f"https://example.com/{path}")
    assert key is not None and len(key.encode()) <= MAX_KEY_URL
    assert normalize_url(key) == key
