"""Feed HTML made safe to store: every entry's summary and content through the article policy.

The README promises that stored HTML is sanitized (issue 11); feeds are parsed with feedparser's
sanitizer off (DESIGN.md decision 5), so this is where feed HTML meets nh3, under the policy of
:mod:`storage.safehtml` that article pages follow too. The raw feed capture keeps the bytes.

It runs beside the parse (a worker thread or process), never on the event loop. A feed that
changed still repeats most of its entries, so a bounded cache keyed by the raw HTML sanitizes
each one once per process rather than once per poll (issue 14 measures this path).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from aggregator.feeds.feedmodel import ParsedFeed
from storage.records import Entry
from storage.safehtml import sanitize_fragment

# Raw and clean text kept, in characters (about 4 MB at most): the entries of the last hundred
# or so feeds that changed. At 8,000,000 a first pass filled it with entries no later poll of
# the pass would ask for again, 3.5 MB of its peak RSS (issue 14).
CACHE_CHARS = 2_000_000

Parse = Callable[[bytes, str, dict[str, str], datetime], ParsedFeed]


class _Cache:
    """Raw HTML → sanitized HTML, least recently used out first, bounded by characters held."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self.entries: OrderedDict[str, str] = OrderedDict()
        self.lock = threading.Lock()  # parses run in several threads at once

    def clean(self, html: str) -> str:
        with self.lock:
            found = self.entries.get(html)
            if found is not None:
                self.entries.move_to_end(html)
                return found
        safe = sanitize_fragment(html)
        size = len(html) + len(safe)
        if size > self.budget // 16:
            return safe  # one huge entry must not empty the cache
        with self.lock:
            if html not in self.entries:
                self.entries[html] = safe
                self.held += size
            while self.held > self.budget:
                raw, old = self.entries.popitem(last=False)
                self.held -= len(raw) + len(old)
        return safe


_CACHE = _Cache(CACHE_CHARS)


def safe_html(html: str | None) -> str | None:
    """``html`` under the policy; None (or nothing left) stays None."""
    if html is None:
        return None
    return _CACHE.clean(html) or None


def sanitize_entry(entry: Entry) -> Entry:
    summary, content = safe_html(entry.summary), safe_html(entry.content_html)
    if summary == entry.summary and content == entry.content_html:
        return entry
    return replace(entry, summary=summary, content_html=content)


def sanitize_feed(parsed: ParsedFeed) -> ParsedFeed:
    return replace(parsed, entries=tuple(sanitize_entry(e) for e in parsed.entries))


def parse_safely(
    parse: Parse, body: bytes, url: str, headers: dict[str, str], now: datetime
) -> ParsedFeed:
    """``parse`` then sanitize, in one call: what the pipeline hands to its executor (a module
    function, so that a process pool can pickle it)."""
    return sanitize_feed(parse(body, url, headers, now))
