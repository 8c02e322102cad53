"""The search page: ``Store.search`` (issue 16, ``storage/search.py``) behind a plain GET form,
with the feed, tag and time filters, and pages of results. A snippet's highlights arrive as
marker characters in plain text; they become ``<mark>`` in the template, the text around them
escaped like everything else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aggregator.config import parse_duration
from aggregator.web.pages import page_number, paging
from aggregator.web.render import web_of
from storage import search as searching
from storage.errors import SearchQueryError
from storage.search import MARK_END, MARK_START, SearchHit

PAGE_SIZE = 20
_MARKED = re.compile(f"{MARK_START}(.*?){MARK_END}", re.DOTALL)


class BadFilter(ValueError):
    """A filter the form cannot read: shown on the page, status 400."""


def search(request: Request) -> Response:
    web = web_of(request)
    params = request.query_params
    query = params.get("q", "").strip()
    form = {"q": query, "feed": params.get("feed", ""), "tag": params.get("tag", ""),
            "since": params.get("since", ""), "until": params.get("until", "")}  # fmt: skip
    context: dict[str, Any] = {"form": form, "feeds": web.store.list_feeds(),
                               "tags": web.store.browse.tags(), "hits": [], "paging": None}
    if not query:
        return web.render(request, "search.html", **context)
    page = page_number(request)
    try:
        found = web.store.search(
            query, feed_url=form["feed"] or None, tag=form["tag"] or None,
            since=when(form["since"], "since", web.clock()),
            until=when(form["until"], "until", web.clock()),
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
        )  # fmt: skip
    except (SearchQueryError, BadFilter) as exc:
        return web.render(request, "search.html", status=400, problem=str(exc), **context)
    shown_so_far = (page - 1) * PAGE_SIZE + len(found.hits)
    # Beyond COUNT_LIMIT matches the store does not count: a next page while pages are full.
    total = found.total if found.total is not None else shown_so_far + (
        1 if len(found.hits) == PAGE_SIZE else 0)
    context.update(hits=[shown(hit) for hit in found.hits], total=total,
                   counted=found.total is not None, limit=searching.COUNT_LIMIT,
                   paging=paging(request, page, total, PAGE_SIZE))  # fmt: skip
    return web.render(request, "search.html", **context)


def shown(hit: SearchHit) -> dict[str, Any]:
    """A hit for the template: its snippet as (highlighted, text) pieces, escaped there."""
    pieces: list[tuple[bool, str]] = []
    at = 0
    for match in _MARKED.finditer(hit.snippet):
        pieces += [(False, hit.snippet[at : match.start()]), (True, match[1])]
        at = match.end()
    pieces.append((False, hit.snippet[at:]))
    clean = [(marked, text.replace(MARK_START, "").replace(MARK_END, ""))
             for marked, text in pieces if text]  # fmt: skip
    return {"hit": hit, "pieces": clean}


def when(value: str, name: str, now: datetime) -> datetime | None:
    """An ISO 8601 date or time (UTC when it gives no offset), or an age such as 7d."""
    value = value.strip()
    if not value:
        return None
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name}: {value[:40]!r} is neither a date (2024-05-01, "
                        "2024-05-01T12:00+02:00) nor an age (7d, 12h)") from None  # fmt: skip
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ROUTES: list[tuple[str, Any]] = [("/search", search)]
