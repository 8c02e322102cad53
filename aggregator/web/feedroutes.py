"""Feeds out over HTTP: ``/feeds/all.atom``, ``/feeds/all.json``, ``/feeds/tag/{tag}.atom`` and
``.json``: the newest items with their full article text, written by ``storage.feedsout`` (the
same writers as ``aggregator export --format atom|jsonfeed``).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from aggregator.web.render import web_of
from storage.feedsout import FeedMeta, atom, json_feed, selection_id

FEED_ITEMS = 50  # entries in a feed out: those added or changed last
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_TYPE = "application/feed+json; charset=utf-8"


def all_atom(request: Request) -> Response:
    return _feed(request, None, "atom")


def all_json(request: Request) -> Response:
    return _feed(request, None, "json")


def tag_atom(request: Request) -> Response:
    return _feed(request, request.path_params["tag"], "atom")


def tag_json(request: Request) -> Response:
    return _feed(request, request.path_params["tag"], "json")


def _feed(request: Request, tag: str | None, kind: str) -> Response:
    web = web_of(request)
    feed_ids = None
    if tag is not None:
        feed_ids = web.store.browse.tagged_feeds(tag)
        if not feed_ids:
            raise HTTPException(404, f"no feed has the tag {tag!r}")
    items = web.store.browse.newest(feed_ids, FEED_ITEMS)
    meta = FeedMeta(
        title="feed-archiver" + (f": {tag}" if tag else ""), id=selection_id(tag),
        updated=web.clock(), self_url=str(request.url), home_url=str(request.url_for("feeds")),
    )  # fmt: skip
    writer, media = (atom, ATOM_TYPE) if kind == "atom" else (json_feed, JSON_TYPE)
    return Response("".join(writer(items, meta)), headers={"content-type": media})


ROUTES: list[tuple[str, Any]] = [
    ("/feeds/all.atom", all_atom),
    ("/feeds/all.json", all_json),
    ("/feeds/tag/{tag}.atom", tag_atom),
    ("/feeds/tag/{tag}.json", tag_json),
]
