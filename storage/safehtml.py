"""The one HTML policy for everything stored for display: article pages and feed entries alike.

nh3 (ammonia) with a short allowlist: no scripts, styles, event handlers, iframes, objects,
embeds, forms, ``<base>`` or ``<meta>``; links only to http, https and mailto (so no
``javascript:`` or ``data:``); no class, style or id attributes. It lives in ``storage``
because stored HTML must be safe whichever way it arrives (a poll, an import, an archive
written before issue 11, which a migration cleans), and ``storage`` never imports
``aggregator``; the article extractor uses the same policy.
"""

from __future__ import annotations

import re
from typing import Any

import nh3

from storage.identity import content_hash

ALLOWED_TAGS = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "blockquote",
    "q", "cite", "figure", "figcaption", "img", "a", "em", "strong", "b", "i", "u", "s", "sub",
    "sup", "small", "mark", "br", "hr", "pre", "code", "table", "thead", "tbody", "tfoot", "tr",
    "th", "td", "caption", "div", "section", "span", "abbr", "time",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "time": {"datetime"},
    "abbr": {"title"},
}
POLICY: dict[str, Any] = {
    "tags": set(ALLOWED_TAGS),
    "clean_content_tags": {"script", "style"},
    "attributes": {k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    "url_schemes": {"http", "https", "mailto"},
    "link_rel": None,
    "strip_comments": True,
}
_FRAGMENTS = nh3.Cleaner(**POLICY)  # built once: a third cheaper than nh3.clean per call
# Text without these comes out of the policy unchanged (tests/test_safe_html.py holds it).
# html5ever serializes some broken markup into markup it parses differently (``<p><select><p>``
# becomes ``<p><p></p></p>``): cleaning is repeated until it is a fixpoint, so that an export
# re-imports unchanged and a re-poll compares equal. Clean markup costs one pass, most two.
_PASSES = 4
_MARKUP = re.compile("[<>&\r\x00\u00a0]")


def sanitize_fragment(html: str) -> str:
    """Feed HTML (an entry's summary or content) under the policy; links stay as the feed wrote
    them (feedparser resolves none either), which spares a Python call per attribute."""
    if _MARKUP.search(html) is None:
        return html
    for _ in range(_PASSES):  # until nothing changes: what is stored must come back the same
        clean = str(_FRAGMENTS.clean(html))
        if clean == html:
            break
        html = clean
    return html


def safe_or_none(html: str | None) -> str | None:
    return None if html is None else (sanitize_fragment(html) or None)


def sanitize_record(item: dict[str, Any]) -> dict[str, Any]:
    """An export record made safe to store (an import file may come from anywhere): its summary,
    content, article HTML and revisions' summaries under the policy. Where that changed a
    summary, the content hashes are recomputed, so that they describe what is stored. A file
    this program exported comes through unchanged (the policy is idempotent)."""
    item["content_html"] = safe_or_none(item.get("content_html"))
    article = item.get("article")
    if isinstance(article, dict) and isinstance(article.get("html"), str):
        article["html"] = sanitize_fragment(article["html"])
    summary = safe_or_none(item.get("summary"))
    if summary != item.get("summary"):
        item["summary"] = summary
        text = article.get("text") if isinstance(article, dict) else None
        item["content_hash"] = content_hash(item.get("title"), summary, text)
    for revision in item.get("revisions") or ():
        summary = safe_or_none(revision.get("summary"))
        if summary != revision.get("summary"):
            revision["summary"] = summary
            revision["content_hash"] = content_hash(revision.get("title"), summary,
                                                    revision.get("text"))
    return item
