"""The web view's pages: feeds and their health, a feed's items, an item, a revision's diff, a raw
capture, search. Each handler reads the archive (synchronously: Starlette runs it in a worker
thread) and renders a template; nothing here writes.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from aggregator.web.diffs import line_diff
from aggregator.web.render import web_of
from storage.errors import StorageError
from storage.feedsout import plain_text

_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
MAX_PAGE = 1_000_000


def feeds(request: Request) -> Response:
    web = web_of(request)
    listing = web.store.list_feeds()
    return web.render(request, "feeds.html", feeds=listing, tags=web.store.browse.tags())


def feed(request: Request) -> Response:
    web = web_of(request)
    feed_id = request.path_params["feed_id"]
    found = web.store.browse.feed(feed_id)
    if found is None:
        raise HTTPException(404, f"no feed {feed_id} in the archive")
    page = page_number(request)
    lines, total = web.store.browse.feed_items(feed_id, (page - 1) * web.page_size,
                                               web.page_size)  # fmt: skip
    return web.render(request, "feed.html", feed=found, items=lines, total=total,
                      history=web.store.poll_history(feed_id, 10),
                      paging=paging(request, page, total, web.page_size))  # fmt: skip


def item(request: Request) -> Response:
    web = web_of(request)
    view = web.store.browse.item(request.path_params["item_id"])
    if view is None:
        raise HTTPException(404, f"no item {request.path_params['item_id']} in the archive")
    feed_ids = web.store.browse.feed_ids()
    return web.render(request, "item.html", view=view, item=view.record,
                      article=view.record.get("article") or {}, feed_ids=feed_ids)  # fmt: skip


def revision(request: Request) -> Response:
    web = web_of(request)
    item_id, seq = request.path_params["item_id"], request.path_params["seq"]
    versions = web.store.browse.revisions(item_id)
    this = next((v for v in versions if v["seq"] == seq), None)
    if this is None:
        raise HTTPException(404, f"item {item_id} has no revision {seq}")
    before = next((v for v in reversed(versions) if v["seq"] < seq), None)
    view = web.store.browse.item(item_id)
    fields = []
    for name, read in (("title", _same), ("summary", plain_text), ("text", _same)):
        old = read(before[name]) if before else None
        new = read(this[name])
        fields.append({"name": name, "rows": line_diff(old, new), "new": new})
    return web.render(request, "revision.html", item_id=item_id, this=this, before=before,
                      fields=fields, versions=versions,
                      title=view.record.get("title") if view else None)  # fmt: skip


def capture(request: Request) -> Response:
    """The raw body as the site sent it, as text: never a live page (nosniff, and a sandbox
    that would hold even a browser that sniffed)."""
    web = web_of(request)
    found = web.store.browse.capture(request.path_params["capture_id"])
    if found is None:
        raise HTTPException(404, f"no capture {request.path_params['capture_id']}")
    content_type = {k.lower(): v for k, v in found.headers}.get("content-type", "")
    name = f"capture-{request.path_params['capture_id']}.txt"
    return Response(found.body, headers={
        "content-type": f"text/plain; charset={charset_of(content_type)}",
        "content-security-policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
        "content-disposition": f'inline; filename="{name}"',
    })  # fmt: skip


def charset_of(content_type: str) -> str:
    """The charset a capture declared, if Python knows it; UTF-8 otherwise."""
    match = _CHARSET.search(content_type)
    if match:
        try:
            return codecs.lookup(match[1]).name
        except LookupError:
            pass
    return "utf-8"


def _same(value: Any) -> Any:
    return value


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise HTTPException(400, f"page: {raw[:20]!r} is not a page number (1, 2, …)")
    return int(raw)


def paging(request: Request, page: int, total: int, size: int) -> dict[str, Any]:
    """Links to the previous and next pages, keeping the other query parameters."""
    last = max(1, -(-total // size))

    def link(number: int) -> str:
        url = request.url.include_query_params(page=number)
        return f"{url.path}?{url.query}"

    return {"page": page, "last": last, "total": total,
            "previous": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if page < last else None}  # fmt: skip


def not_found(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, HTTPException) else "not found"
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return web_of(request).render(request, "error.html", status=status, message=detail)


def storage_error(request: Request, exc: Exception) -> Response:
    return web_of(request).render(request, "error.html", status=503, message=str(exc))


ROUTES: list[tuple[str, Any]] = [
    ("/", feeds),
    ("/feed/{feed_id:int}", feed),
    ("/item/{item_id:int}", item),
    ("/item/{item_id:int}/revision/{seq:int}", revision),
    ("/capture/{capture_id:int}", capture),
]
EXCEPTION_HANDLERS: dict[Any, Any] = {HTTPException: not_found, StorageError: storage_error}
