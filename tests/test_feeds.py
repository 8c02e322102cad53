"""parse_feed on well-formed feeds of every format, and its field rules (keys, dates, text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.feeds.feedmodel import clean_text
from aggregator.feeds.parse import parse_feed
from tests.feedfixtures import FEED_URL, FEEDS, as_golden, item, rss

GOLDEN = sorted(p for p in FEEDS.iterdir() if (p.parent / (p.name + ".expected.json")).exists())
pytestmark = pytest.mark.timeout(20)


def test_every_golden_fixture_has_its_pair() -> None:
    assert {p.name for p in GOLDEN} >= {
        "rss091.rss",
        "rss10.rdf",
        "rss20_full.rss",
        "atom03.atom",
        "atom10.atom",
        "jsonfeed10.json",
        "jsonfeed11.json",
    }


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    expected = json.loads((path.parent / (path.name + ".expected.json")).read_text("utf-8"))
    assert as_golden(parse_feed(path.read_bytes(), FEED_URL, {})) == expected


def test_offset_is_kept_not_converted_to_utc() -> None:
    body = rss(item(1, guid="g", pubDate="Tue, 20 Apr 2021 17:05:00 +0600"))
    published = parse_feed(body, FEED_URL, {}).entries[0].published
    assert published == datetime(2021, 4, 20, 17, 5, tzinfo=timezone(timedelta(hours=6)))
    assert published is not None and published.utcoffset() == timedelta(hours=6)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-04-20T17:05:00+06:00", "2021-04-20T17:05:00+06:00"),
        ("2021-04-20T17:05:00Z", "2021-04-20T17:05:00+00:00"),
        ("Tue, 20 Apr 2021 17:05:00 EST", "2021-04-20T17:05:00-05:00"),
        ("Tue, 20 Apr 2021 17:05:00 -0000", "2021-04-20T17:05:00+00:00"),
        ("Tue, 20 Apr 2021 17:05:00", "2021-04-20T17:05:00+00:00"),  # no zone: UTC by convention
        ("", None),
        ("yesterday-ish", None),
        ("Tue, 45 Foo 2021 99:99:99 +0600", None),
    ],
)
def test_dates(raw: str, expected: str | None) -> None:
    entry = parse_feed(rss(item(1, guid="g", pubDate=raw)), FEED_URL, {}).entries[0]
    assert (entry.published.isoformat() if entry.published else None) == expected


def test_missing_date_is_none() -> None:
    entry = parse_feed(rss(item(1, guid="g")), FEED_URL, {}).entries[0]
    assert entry.published is None and entry.updated is None


def test_future_dates_dropped_only_when_now_is_given() -> None:
    body = rss(
        item(1, guid="a", pubDate="Fri, 01 Jan 2100 00:00:00 GMT")
        + item(2, guid="b", pubDate="Tue, 20 Apr 2021 18:00:00 GMT")
    )
    now = datetime(2021, 4, 20, 12, 0, tzinfo=UTC)
    future, near = parse_feed(body, FEED_URL, {}, now=now).entries
    assert future.published is None  # decades ahead: wrong
    assert near.published == datetime(2021, 4, 20, 18, 0, tzinfo=UTC)  # within a day: kept
    assert parse_feed(body, FEED_URL, {}).entries[0].published is not None


def test_keys_by_kind_guid_link_hash() -> None:
    body = rss(item(1, guid="g1", link="/a") + item(2, link="/b") + item(3, description="x"))
    keys = [e.key for e in parse_feed(body, FEED_URL, {}).entries]
    assert keys[0] == "guid:g1"
    assert keys[1] == "link:https://example.org/b"
    assert keys[2].startswith("hash:") and len(keys[2]) == len("hash:") + 32


def test_hash_key_is_stable_and_content_sensitive() -> None:
    one = parse_feed(rss(item(1, description="x")), FEED_URL, {}).entries[0].key
    again = parse_feed(rss(item(1, description="x")), FEED_URL, {}).entries[0].key
    other = parse_feed(rss(item(1, description="y")), FEED_URL, {}).entries[0].key
    assert one == again != other


def test_the_same_guid_on_every_item_keeps_every_item_apart() -> None:
    body = rss("".join(item(n, guid="same", link=f"/p/{n}") for n in range(5)))
    parsed = parse_feed(body, FEED_URL, {})
    keys = [e.key for e in parsed.entries]
    assert len(set(keys)) == 5 and keys[-1] == "guid:same"  # the oldest keeps the bare guid
    assert all(k.startswith("guid:same#") for k in keys[:-1])
    assert all(e.guid == "same" for e in parsed.entries) and parsed.warning is None


def test_no_guids_at_all() -> None:
    body = rss("".join(item(n, link=f"https://example.org/p/{n}") for n in range(3)))
    parsed = parse_feed(body, FEED_URL, {})
    assert [e.key for e in parsed.entries] == [f"link:https://example.org/p/{n}" for n in range(3)]


def test_exact_duplicates_are_dropped_with_a_warning() -> None:
    body = rss(item(1, guid="g", link="/x") * 3)
    parsed = parse_feed(body, FEED_URL, {})
    assert len(parsed.entries) == 1
    assert parsed.warning and "2 duplicate entries dropped" in parsed.warning


def test_nul_and_control_characters_are_stripped() -> None:
    body = rss(item("a\x00b\x01c\x7f", guid="g\x02", description="x\x00y\x1bz w"))
    entry = parse_feed(body, FEED_URL, {}).entries[0]
    assert entry.title == "Item abc"
    assert entry.guid == "g"
    assert entry.summary == "xyz w"


def test_clean_text_strips_c1_controls_and_keeps_layout() -> None:
    assert clean_text("a\x9db\u0085c\tx\ny") == "abc\tx\ny"
    assert clean_text("  \x00 ") is None


def test_huge_title_is_truncated() -> None:
    parsed = parse_feed(rss(item("T" * 65536, guid="g")), FEED_URL, {})
    assert parsed.entries[0].title is not None and len(parsed.entries[0].title) == 2000


def test_only_http_links_survive() -> None:
    body = rss(item(1, guid="g", link="javascript:alert(1)") + item(2, link="data:text/html,x"))
    urls = [e.url for e in parse_feed(body, FEED_URL, {}).entries]
    assert urls == [None, None]


def test_empty_but_valid_feed_has_no_entries_and_no_error() -> None:
    parsed = parse_feed(rss(""), FEED_URL, {})
    assert parsed.entries == () and parsed.title == "T" and parsed.warning is None


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>x</p></body></html>",
        b"\n  <html lang=en><body><a href='/feed'>feed</a></body></html>",
        b"<!-- served by nginx --><!doctype HTML><html></html>",
    ],
)
def test_html_served_as_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError, match=r"^parse: not a feed .*for https://example\.org/"):
        parse_feed(body, FEED_URL, {"content-type": "text/html"})


@pytest.mark.parametrize("body", [b"", b"   ", b"plain text", b"<note><to>x</to></note>"])
def test_not_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, FEED_URL, {})


def test_body_naming_a_local_file_is_not_opened(tmp_path: Path) -> None:
    """feedparser opens a bytes argument as a path if such a file exists; we never let it."""
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss(item("SECRET", guid="s")))
    with pytest.raises(ParseError):
        parse_feed(str(secret).encode(), FEED_URL, {})


def test_truncated_document_keeps_what_parsed() -> None:
    body = rss("".join(item(n, guid=f"g{n}") for n in range(5)))
    cut = body[: body.index(b"<item><title>Item 4")] + b"<item><title>Ite"
    parsed = parse_feed(cut, FEED_URL, {})
    assert [e.guid for e in parsed.entries] == ["g0", "g1", "g2", "g3"]  # not the partial one
    assert parsed.warning and "malformed XML" in parsed.warning
    assert "last entry was cut off" in parsed.warning


@pytest.mark.parametrize(
    "body",
    [
        b"<rss><channel><item><title>x</ti",
        b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><entry><title>Hal",
    ],
)
def test_truncated_inside_its_only_entry_is_an_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="no entries could be read"):
        parse_feed(body, FEED_URL, {})


def test_truncated_document_without_entries_is_an_error() -> None:
    with pytest.raises(ParseError, match="no entries"):
        parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>T', FEED_URL, {})


def test_undeclared_html_entities_still_parse() -> None:
    parsed = parse_feed(rss(item("a&nbsp;b &eacute;", guid="g")), FEED_URL, {})
    assert parsed.entries[0].title == "Item a b é"  # titles have their whitespace collapsed


def test_feed_ttl_in_seconds_and_nonsense_ignored() -> None:
    assert parse_feed(rss("", head="<ttl>60</ttl>"), FEED_URL, {}).ttl == 3600
    assert parse_feed(rss("", head="<ttl>-5</ttl>"), FEED_URL, {}).ttl is None
    assert parse_feed(rss("", head="<ttl>soon</ttl>"), FEED_URL, {}).ttl is None


def test_too_many_entries_are_capped_with_a_warning() -> None:
    body = rss("".join(item(n, guid=f"g{n}") for n in range(10_050)))
    parsed = parse_feed(body, FEED_URL, {})
    assert len(parsed.entries) == 10_000
    assert parsed.entries[-1].guid == "g9999"
    assert parsed.warning and "kept the first 10000" in parsed.warning
