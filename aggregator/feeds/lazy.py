"""The parser's entry points for the pipeline, loading it when the first body is parsed.

A ``poll --once`` of 304s parses nothing and so never loads lxml, feedparser or the fast path
(40-60 ms of CPU and 9 MiB at every start, issue 14); the first pass loads them in the
executor's thread, not on the event loop. Module functions, so that a process pool pickles
them by name and its workers load this module and the parser only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.feeds.feedmodel import ParsedFeed

Parse = Callable[[bytes, str, dict[str, str], datetime], "ParsedFeed"]


def parse_feed(body: bytes, url: str, headers: dict[str, str], now: datetime) -> ParsedFeed:
    """``aggregator.feeds.parse.parse_feed``."""
    from aggregator.feeds.parse import parse_feed as parse

    return parse(body, url, headers, now)


def parse_safely(parse: Parse, body: bytes, url: str, headers: dict[str, str],
                 now: datetime) -> ParsedFeed:  # fmt: skip
    """``aggregator.feeds.feedhtml.parse_safely``: ``parse`` then sanitize, in one call."""
    from aggregator.feeds.feedhtml import parse_safely as safely

    return safely(parse, body, url, headers, now)
