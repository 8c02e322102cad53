"""Full-text search over the archive: the records a search returns (issue 16).

``Store.search`` answers with a ``SearchPage`` of ``SearchHit``s, best first. A hit's
``snippet`` is plain text (never HTML): the matched words are wrapped in ``MARK_START`` and
``MARK_END``, two private-use characters that stored text never carries (the index drops them),
so a renderer escapes the snippet first and then turns the markers into ``<mark>``, or into
``[``/``]`` on a terminal (``highlight``). The query syntax is ``storage.searchquery``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MARK_START = "\ue000"  # opens a highlighted span in ``SearchHit.snippet``
MARK_END = "\ue001"  # closes it


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One item that matched, with the best passage of its text."""

    item_id: int
    feed_url: str  # the feed that first brought the item
    title: str | None
    url: str | None
    published: datetime | None  # timezone-aware, in the source's own offset; None if unknown
    snippet: str  # plain text, matches between MARK_START and MARK_END
    rank: float  # higher is better; comparable within one page of one query only


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of hits, and how many items match in all (None when not counted)."""

    hits: list[SearchHit]
    total: int | None


def highlight(snippet: str, start: str = "[", end: str = "]") -> str:
    """The snippet with its markers replaced (a terminal's ``[word]``, or escaped HTML's tags)."""
    return snippet.replace(MARK_START, start).replace(MARK_END, end)
