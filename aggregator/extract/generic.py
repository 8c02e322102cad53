"""The generic body extractor: trafilatura (favor_precision) on the page, minus other articles.

Speed (issue 17): trafilatura's own cascade weighs its result against readability and jusText;
that comparison costs about half its time and changes only texts short enough to be a fragment.
So its fast mode runs first, and the full cascade only confirms a short or doubtful result.
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]
from trafilatura import bare_extraction
from trafilatura.htmlprocessing import convert_to_html
from trafilatura.settings import Extractor

from aggregator.extract.clean import sanitize

GENERIC = "generic"
_SHORT = 1000  # characters: below this, the precision pass may have missed the story
_WIDER = 1.5  # ... and a recall pass must find this much more to replace it
_ARTICLE_MIN_TEXT = 400  # characters for an <article> to count as a full story
# Below this, on a page holding twice as much text, the fast pass may have kept a fragment that
# readability would replace (a dev page: 1,042 characters of a 4,500-character story), so the
# full cascade confirms it. Longer texts stand: on the 181 dev pages it changed none of them.
_CONFIRM = 1500
# Elements trafilatura's cleaning deletes anyway (its MANUALLY_CLEANED, minus <form>, <figure>
# and <math>, which it may keep or salvage): gone before it walks the tree with its XPaths.
_NEVER_TEXT = (
    "aside", "embed", "fencedframe", "footer", "iframe", "menu", "object", "applet", "audio",
    "canvas", "map", "picture", "svg", "video", "area", "blink", "button", "datalist", "dialog",
    "frame", "frameset", "fieldset", "link", "input", "label", "legend", "marquee", "menuitem",
    "nav", "noindex", "noscript", "optgroup", "option", "output", "param", "progress", "rp",
    "rt", "rtc", "select", "source", "style", "track", "textarea", "time", "use",
)
# ... and the tags it unwraps first thing (its MANUALLY_STRIPPED; <img> as images are off)
_UNWRAPPED = (
    "abbr", "acronym", "address", "bdi", "bdo", "big", "cite", "data", "dfn", "font", "hgroup",
    "img", "ins", "mark", "meta", "nobr", "ruby", "small", "tbody", "template", "tfoot",
    "thead", "wbr",
)
_TEXT = etree.XPath("//text()[not(parent::script)]", smart_strings=False)
_LD_JSON = "application/ld+json"  # trafilatura reads it (forum threads); other scripts go
# What makes trafilatura's full cascade consult jusText or readability on a long text
# (trafilatura.external.compare_extraction): page furniture left in the body, no paragraphs.
_FURNITURE_LEFT = etree.XPath(
    ".//aside|.//audio|.//button|.//fencedframe|.//fieldset|.//figure|.//footer|.//iframe|"
    ".//input|.//label|.//link|.//nav|.//noindex|.//noscript|.//object|.//option|.//select|"
    ".//source|.//svg|.//time"
)
_P_TEXT = etree.XPath(".//p//text()")


def generic_body(root: HtmlElement, url: str) -> str:
    """Sanitized HTML of the main article, or "" when trafilatura finds none.

    Prunes ``root`` in place: the caller's last use of the page's tree. Precision first (fast,
    confirmed by the full cascade when short or doubtful); when that finds next to nothing, a
    recall pass that finds much more wins (precision mode sometimes keeps a teaser block and
    drops the story).
    """
    tree = only_first_article(root)
    drop_never_text(tree)
    body = _trafilatura(tree, precision=True, fast=True)
    page = _Text(tree)
    if _to_confirm(body, page):
        body = _trafilatura(tree, precision=True)
    if _length(body) < _SHORT and page.length() >= _WIDER * _length(body):
        wider = _trafilatura(tree, precision=False)
        if _length(wider) >= _WIDER * _length(body):
            body = wider
    if body is None or not len(body):
        return ""
    html = etree.tostring(convert_to_html(body), encoding="unicode", method="html")
    return sanitize(html, url)


def drop_never_text(tree: HtmlElement) -> None:
    """A smaller tree: trafilatura's XPaths and copies cost by the element.

    Its own extraction gives the same result (its cleaning deletes or unwraps all of this
    first, and <head> whole: the JSON-LD there is all it reads of it); readability, in the
    full cascade, sees less page furniture (of the 181 dev pages, one text changed: F1 +0.08).
    """
    for script in list(tree.iter("script")):
        if (script.get("type") or "").strip().lower() != _LD_JSON:
            script.drop_tree()
    for head in tree.findall("head"):
        for child in list(head):
            if child.tag != "script":
                child.drop_tree()
    etree.strip_elements(tree, *_NEVER_TEXT, with_tail=False)
    etree.strip_tags(tree, *_UNWRAPPED)


class _Text:
    """How much text the page holds (spaces collapsed, scripts aside), measured once if asked:
    no pass can extract more, so a pass that could only win by finding more need not run."""

    def __init__(self, tree: HtmlElement) -> None:
        self._tree, self._length = tree, -1

    def length(self) -> int:
        if self._length < 0:
            self._length = len(" ".join(" ".join(_TEXT(self._tree)).split()))
        return self._length


def _to_confirm(body: Any, page: _Text) -> bool:
    """Whether the full cascade could change the fast pass's text: readability replaces a text
    of 1,000 characters or more only with one twice as long (trafilatura.external)."""
    length = _length(body)
    if length < _SHORT or _doubtful(body):
        return True
    return length < _CONFIRM and page.length() > 2 * length


def _doubtful(body: Any) -> bool:
    """A long text the full cascade would still second-guess: furniture inside, or no <p>
    text, or more tables than paragraphs."""
    if body is None:
        return True
    if _FURNITURE_LEFT(body) or not _P_TEXT(body):
        return True
    return len(body.findall(".//table")) > len(body.findall(".//p"))


def _options(*, precision: bool, fast: bool) -> Extractor:
    return Extractor(
        fast=fast,
        output_format="xml",  # only the tree is read: "python" would also render its text
        url=None,  # links are made absolute once, by sanitize(): trafilatura's pass cost 5 %
        precision=precision,
        comments=False,
        tables=True,
        images=False,  # captions and alt texts cost precision (bench: F1 -0.006)
        links=True,
        formatting=True,
        with_metadata=False,
    )


# Built once (reading its config costs a tenth of a millisecond a pass); trafilatura never
# edits the options it is given (it copies them to change focus), so passes may share them.
_PASSES = {(p, f): _options(precision=p, fast=f) for p in (True, False) for f in (True, False)}


def _trafilatura(tree: HtmlElement, *, precision: bool, fast: bool = False) -> Any:
    doc = bare_extraction(tree, options=_PASSES[precision, fast])
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
