"""The generic body extractor: trafilatura (favor_precision) on the page, minus other articles."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]
from trafilatura import bare_extraction
from trafilatura.htmlprocessing import convert_to_html

from aggregator.extract.clean import sanitize

GENERIC = "generic"
_SHORT = 1000  # characters: below this, the precision pass may have missed the story
_WIDER = 1.5  # ... and a recall pass must find this much more to replace it
_ARTICLE_MIN_TEXT = 400  # characters for an <article> to count as a full story


def generic_body(root: HtmlElement, url: str) -> str:
    """Sanitized HTML of the main article, or "" when trafilatura finds none.

    Precision first; when that finds next to nothing, a recall pass that finds much more wins
    (precision mode sometimes keeps a teaser block and drops the story).
    """
    tree = only_first_article(root)
    body = _trafilatura(tree, precision=True)
    if _length(body) < _SHORT:
        wider = _trafilatura(tree, precision=False)
        if _length(wider) >= _WIDER * _length(body):
            body = wider
    if body is None or not len(body):
        return ""
    html = etree.tostring(convert_to_html(body), encoding="unicode", method="html")
    return sanitize(html, url)


def _trafilatura(tree: HtmlElement, *, precision: bool) -> Any:
    doc = bare_extraction(
        tree,
        url=None,  # links are made absolute once, by sanitize(): trafilatura's pass cost 5 %
        favor_precision=precision,
        include_comments=False,
        include_tables=True,
        include_images=False,  # captions and alt texts cost precision (bench: F1 -0.006)
        include_links=True,
        include_formatting=True,
        with_metadata=False,
    )
    return getattr(doc, "body", None)


def _length(body: Any) -> int:
    return 0 if body is None else sum(len(t.strip()) for t in body.itertext())


def only_first_article(root: HtmlElement) -> HtmlElement:
    """A listing page that scrolls into further stories: keep only the first full <article>."""
    stories = [a for a in root.iter("article") if _is_story(a)]
    if len(stories) < 2:
        return root
    tree = copy.deepcopy(root)
    stories = [a for a in tree.iter("article") if _is_story(a)]
    for extra in stories[1:]:
        parent = extra.getparent()
        if parent is not None:
            parent.remove(extra)
    return tree


def _is_story(node: HtmlElement) -> bool:
    """Top-level <article> with a heading and article-length text (not a teaser card)."""
    if any(a.tag == "article" for a in node.iterancestors()):
        return False
    if node.find(".//h1") is None and node.find(".//h2") is None:
        return False
    text = sum(len(p.text_content()) for p in node.iter("p"))
    return text >= _ARTICLE_MIN_TEXT
