"""A site rule's selectors over one page: on the page's lxml tree when cssselect can translate
them all, else on a BeautifulSoup parse (soupsieve reads more CSS); never edits the page.

The tree path spares a second parse of the whole page (issue 17, speed: BeautifulSoup and
soupsieve were six sevenths of a Kazinform page's time). Both give the same texts: elements'
text joined by spaces, script and style text left out, the body cleaned by the same rules.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from cssselect import ExpressionError, HTMLTranslator, SelectorError
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]

from aggregator.extract.clean import (
    DROP_TAGS,
    FURNITURE,
    HOME_LINK,
    clean_element,
    parse_soup,
    sanitize,
)
from aggregator.extract.rules import SiteRule

_TEXT = etree.XPath(
    "descendant-or-self::text()[not(ancestor::script or ancestor::style or ancestor::template)]",
    smart_strings=False,
)


class RuleDoc(Protocol):
    """What the cascade asks of a page through a site rule."""

    def select(self, selector: str) -> list[Any]: ...
    def text(self, hit: Any) -> str: ...
    def attr(self, hit: Any, name: str) -> str | None: ...
    def elsewhere(self, hit: Any) -> bool: ...
    def body_html(self, hit: Any, remove: Sequence[str], url: str) -> str: ...


def rule_doc(root: HtmlElement, html: str, rule: SiteRule) -> RuleDoc:
    """The tree when every selector of the rule translates to XPath, else a soup of ``html``."""
    selectors = (*rule.body, *rule.amp_body, *rule.title, *rule.published, *rule.modified,
                 *rule.authors, *rule.dateline, *rule.remove)
    if all(_xpath(s) is not None for s in selectors):
        return TreeDoc(root)
    return SoupDoc(html)


@lru_cache(maxsize=512)
def _xpath(selector: str) -> etree.XPath | None:
    try:
        return etree.XPath(HTMLTranslator().css_to_xpath(selector))
    except (SelectorError, ExpressionError, etree.XPathSyntaxError):
        return None


def _marks(node: Any) -> str:
    return f"{' '.join((node.get('class') or '').split())} {node.get('id') or ''}"


class TreeDoc:
    """The page's own lxml tree."""

    def __init__(self, root: HtmlElement) -> None:
        self._root = root

    def select(self, selector: str) -> list[Any]:
        compiled = _xpath(selector)
        return list(compiled(self._root)) if compiled is not None else []

    def text(self, hit: Any) -> str:
        return " ".join(" ".join(_TEXT(hit)).split())

    def attr(self, hit: Any, name: str) -> str | None:
        value = hit.get(name)
        return str(value) if value is not None else None

    def elsewhere(self, hit: Any) -> bool:
        for up in (hit, *hit.iterancestors()):
            if up.tag == "a":
                return True
            marks = _marks(up)
            if marks.strip() and FURNITURE.search(marks):
                return True
        return False

    def body_html(self, hit: Any, remove: Sequence[str], url: str) -> str:
        """``clean.clean_element`` on a copy of the tree's element."""
        node = copy.deepcopy(hit)
        for selector in remove:
            _drop(self._select_in(node, selector))
        _drop(list(node.iterdescendants(*DROP_TAGS)))
        _drop_boilerplate(node, self.text)
        for amp in list(node.iter("amp-img")):
            amp.tag = "img"
            _drop(list(amp))  # AMP's <noscript><img> fallback would double the picture
        _blank_lines(node)
        return sanitize(_inner(node), url)

    @staticmethod
    def _select_in(node: HtmlElement, selector: str) -> list[Any]:
        compiled = _xpath(selector)
        return [h for h in compiled(node) if h is not node] if compiled is not None else []


def _drop(hits: Iterable[Any]) -> None:
    for hit in hits:
        if hit.getparent() is not None:
            hit.drop_tree()


def _drop_boilerplate(node: HtmlElement, text: Any) -> None:
    for hit in list(node.iterdescendants()):
        if not isinstance(hit.tag, str) or not any(up is node for up in hit.iterancestors()):
            continue  # a comment, or inside what was dropped already
        marks = _marks(hit)
        furniture = bool(marks.strip()) and FURNITURE.search(marks) is not None
        if furniture or (hit.tag == "a" and HOME_LINK.match(text(hit))):
            hit.drop_tree()


def _blank_lines(node: HtmlElement) -> None:
    """Indentation between elements as BeautifulSoup's parse keeps it: one newline."""
    for element in node.iter():
        if _blank_line(element.text):
            element.text = "\n"
        if element is not node and _blank_line(element.tail):
            element.tail = "\n"


def _blank_line(text: str | None) -> bool:
    return text is not None and not text.strip() and "\n" in text


def _inner(node: HtmlElement) -> str:
    head = etree.Element("x")
    head.text = node.text
    opened = str(etree.tostring(head, encoding="unicode", method="html"))
    text = opened[len("<x>") : -len("</x>")]
    return text + "".join(
        str(etree.tostring(child, encoding="unicode", method="html", with_tail=True))
        for child in node
    )


class SoupDoc:
    """A BeautifulSoup parse, for selectors only soupsieve reads."""

    def __init__(self, html: str) -> None:
        self._soup = parse_soup(html)

    def select(self, selector: str) -> list[Any]:
        return list(self._soup.select(selector))

    def text(self, hit: Any) -> str:
        return " ".join(str(hit.get_text(" ")).split())

    def attr(self, hit: Any, name: str) -> str | None:
        value = hit.get(name)
        return value if isinstance(value, str) else None

    def elsewhere(self, hit: Any) -> bool:
        for up in (hit, *hit.parents):
            if up.name == "a":
                return True
            marks = " ".join([*(up.get_attribute_list("class") or []), str(up.get("id") or "")])
            if marks.strip() and FURNITURE.search(marks):
                return True
        return False

    def body_html(self, hit: Any, remove: Sequence[str], url: str) -> str:
        return str(clean_element(hit, remove, url))
