"""Feed parsing: bytes in, a sanitized ``ParsedFeed`` (fast path, feedparser, JSON Feed); no I/O.

XML is made safe first (``xmlsafety``, ``xmltext``) and rescued if feedparser still raises
(``xmlrescue``); which entries of a document are one entry is ``storage.identity``'s rule.
The names below load on first use (lxml, feedparser): ``aggregator.feeds.lazy`` holds the
entry points that a process imports before it has anything to parse (issue 14).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.feeds.feedhtml import parse_safely
    from aggregator.feeds.feedmodel import ParsedFeed
    from aggregator.feeds.parse import parse_feed

__all__ = ["ParsedFeed", "parse_feed", "parse_safely"]


def __getattr__(name: str) -> Any:
    if name == "ParsedFeed":
        from aggregator.feeds.feedmodel import ParsedFeed

        return ParsedFeed
    if name == "parse_feed":
        from aggregator.feeds.parse import parse_feed

        return parse_feed
    if name == "parse_safely":
        from aggregator.feeds.feedhtml import parse_safely

        return parse_safely
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
