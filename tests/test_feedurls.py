"""Short forms of feed URLs and finding a feed by one (``aggregator.cli.feedurls``), and how far
ahead a time is in the service's log lines (``aggregator.runtime.logs.until``): pure, by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.cli.feedurls import matching, short_forms
from aggregator.runtime.logs import until

URLS = ["https://news.example/rss", "http://news.example/rss/world", "https://blog.example/",
        "http://twin.example/feed", "https://twin.example/feed", "https://a.example/f?x=1"]


def test_short_forms_drop_the_scheme_unless_two_feeds_would_share_one() -> None:
    assert short_forms(URLS) == {
        "https://news.example/rss": "news.example/rss",
        "http://news.example/rss/world": "news.example/rss/world",
        "https://blog.example/": "blog.example",
        "http://twin.example/feed": "http://twin.example/feed",
        "https://twin.example/feed": "https://twin.example/feed",
        "https://a.example/f?x=1": "a.example/f?x=1",
    }


@pytest.mark.parametrize(("given", "found"), [
    ("news.example/rss", ["https://news.example/rss"]),  # exact beats the longer one it begins
    ("https://news.example/rss", ["https://news.example/rss"]),
    ("news.example/rss/w", ["http://news.example/rss/world"]),
    ("blog.example", ["https://blog.example/"]),
    ("twin.example", ["http://twin.example/feed", "https://twin.example/feed"]),  # ambiguous
    ("http", sorted(URLS)),
    ("https://twin", ["https://twin.example/feed"]),
    ("news.example/rs", ["http://news.example/rss/world", "https://news.example/rss"]),
    ("nowhere.example", []),
])  # fmt: skip
def test_a_feed_is_found_by_its_url_short_form_or_a_beginning(given: str,
                                                              found: list[str]) -> None:
    assert matching(given, URLS) == found


NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "shown"), [
    (-5, "now"), (0, "now"), (59, "in 59s"), (60, "in 1m"), (119, "in 1m 59s"),
    (3600, "in 1h"), (3600 + 13 * 60 + 59, "in 1h 13m"), (86400 + 5, "in 1d"),
    (2 * 86400 + 3700, "in 2d 1h"),
])  # fmt: skip
def test_until_shows_two_units_at_most(seconds: int, shown: str) -> None:
    assert until(NOW + timedelta(seconds=seconds), NOW) == shown
