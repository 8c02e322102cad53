"""The pipeline's deferred entry points (``aggregator.feeds.lazy``) are the parser itself.

They load it when first called (a pass of 304s never does, issue 14); what they return must be
what the parser returns, sanitized the same way, for every golden feed of ``tests/data/feeds``.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.feeds import feedhtml, lazy, parse
from tests.feedfixtures import FEED_URL, FEEDS

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
GOLDEN = sorted(p for p in FEEDS.iterdir() if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_the_deferred_parser_is_the_parser(path: Path) -> None:
    body, headers = path.read_bytes(), {"content-type": "application/xml"}
    assert lazy.parse_feed(body, FEED_URL, headers, NOW) == parse.parse_feed(
        body, FEED_URL, headers, NOW)
    assert lazy.parse_safely(lazy.parse_feed, body, FEED_URL, headers, NOW) == (
        feedhtml.parse_safely(parse.parse_feed, body, FEED_URL, headers, NOW))


def test_a_process_pool_pickles_them_by_name() -> None:
    """A parse worker process imports this small module, not the runtime."""
    assert pickle.loads(pickle.dumps(lazy.parse_safely)) is lazy.parse_safely
    assert pickle.loads(pickle.dumps(lazy.parse_feed)) is lazy.parse_feed
