"""Feed parsing: bytes in, a sanitized ``ParsedFeed`` (fast path, feedparser, JSON Feed); no I/O.

XML is made safe first (``xmlsafety``, ``xmltext``) and rescued if feedparser still raises
(``xmlrescue``); which entries of a document are one entry is ``storage.identity``'s rule.
"""

from aggregator.feeds.feedhtml import parse_safely
from aggregator.feeds.feedmodel import ParsedFeed
from aggregator.feeds.parse import parse_feed

__all__ = ["ParsedFeed", "parse_feed", "parse_safely"]
