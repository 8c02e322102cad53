"""Issue 10, item 2: enclosures as each format writes them, read alike on both XML paths, and
bounded (they come from hostile documents like any other field)."""

from __future__ import annotations

import json

import pytest

from aggregator.feeds.feedmodel import MAX_ENCLOSURES, parse_duration
from aggregator.feeds.parse import parse_feed
from storage.records import Enclosure

URL = "https://show.example/feed"
ITUNES = 'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'


def rss(item: str, ns: str = "") -> bytes:
    head = f'<?xml version="1.0"?><rss version="2.0" {ns}><channel><title>S</title>'
    return f"{head}<item><title>E</title><guid>e1</guid>{item}</item></channel></rss>".encode()


def both(body: bytes) -> tuple[Enclosure, ...]:
    """The enclosures of the one entry; the fast path and feedparser must agree."""
    fast = parse_feed(body, URL, {}).entries[0].enclosures
    assert parse_feed(body, URL, {}, fast_path=False).entries[0].enclosures == fast
    return fast


def test_rss_enclosure_with_itunes_duration() -> None:
    body = rss('<enclosure url="/e1.mp3" length="123456" type="audio/mpeg"/>'
               "<itunes:duration>1:02:03</itunes:duration>", ITUNES)  # fmt: skip
    assert both(body) == (Enclosure("https://show.example/e1.mp3", "audio/mpeg", 123456, 3723),)


def test_media_group_and_a_duplicate_of_the_enclosure_merge_by_url() -> None:
    body = rss('<enclosure url="https://cdn.example/e1.mp3" type="audio/mpeg"/>'
               '<media:group><media:content url="https://cdn.example/e1.mp3" fileSize="99" '
               'duration="61"/><media:content url="https://cdn.example/e1.mp4" type="video/mp4"/>'
               "</media:group>", MEDIA)  # fmt: skip
    assert both(body) == (Enclosure("https://cdn.example/e1.mp3", "audio/mpeg", 99, 61),
                          Enclosure("https://cdn.example/e1.mp4", "video/mp4"))  # fmt: skip


def test_atom_link_rel_enclosure() -> None:
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><id>x</id>'
            b'<title>t</title><link href="https://show.example/1"/>'
            b'<link rel="enclosure" href="https://cdn.example/1.ogg" type="audio/ogg" '
            b'length="77"/></entry></feed>')  # fmt: skip
    assert both(body) == (Enclosure("https://cdn.example/1.ogg", "audio/ogg", 77),)


def test_json_feed_attachments() -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
        {"id": "1", "title": "t", "attachments": [
            {"url": "https://cdn.example/1.m4a", "mime_type": "audio/x-m4a",
             "size_in_bytes": 5000, "duration_in_seconds": 1800.5},
            {"url": "javascript:alert(1)", "mime_type": "x"}, "junk", {"mime_type": "no url"}]}]}
    [item] = parse_feed(json.dumps(doc).encode(), URL, {}).entries
    assert item.enclosures == (Enclosure("https://cdn.example/1.m4a", "audio/x-m4a", 5000, 1800),)


def test_values_are_bounded_and_junk_is_dropped() -> None:
    many = "".join(f'<media:content url="https://cdn.example/{n}.jpg"/>' for n in range(80))
    junk = ('<enclosure url="https://cdn.example/a.mp3" length="99999999999999999999999"/>'
            '<enclosure url="https://cdn.example/b.mp3" length="-5"/>'
            '<enclosure url="ftp://cdn.example/c.mp3" length="1"/><enclosure url=""/>')
    found = both(rss(junk + many, MEDIA))
    assert len(found) == MAX_ENCLOSURES
    assert found[:2] == (Enclosure("https://cdn.example/a.mp3"),
                         Enclosure("https://cdn.example/b.mp3"))  # fmt: skip


@pytest.mark.parametrize(("raw", "seconds"), [
    ("3723", 3723), ("62:03", 3723), ("1:02:03", 3723), ("3723.9", 3723), (" 45 ", 45),
    (12, 12), (1.5, 1), ("", None), ("1:2:3:4", None), ("abc", None), ("-3", None),
    ("1e400", None), ("nan", None), (True, None), (None, None), ("9" * 50, None),
])  # fmt: skip
def test_durations(raw: object, seconds: int | None) -> None:
    assert parse_duration(raw) == seconds
