"""Clean an article's markup: drop page furniture, keep its structure, sanitize (nh3)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin

import nh3
from bs4 import BeautifulSoup, Tag

from storage.safehtml import POLICY

# Furniture that is never article text, whatever the site.
DROP_TAGS = (
    "script", "style", "noscript", "nav", "aside", "form", "iframe", "button", "svg", "footer",
    "template", "input", "select", "textarea", "object", "embed", "link", "meta", "base",
    "amp-ad", "amp-analytics", "amp-social-share", "amp-sidebar", "amp-iframe", "amp-embed",
    "amp-sticky-ad", "amp-consent", "amp-pixel",
)
FURNITURE = _BOILERPLATE = re.compile(
    r"(?:^|[-_\s])(share|sharing|social|related|newsletter|subscribe|advert\w*|ads?|promo|"
    r"comments?|breadcrumbs?|sidebar|recommend\w*|read-?more|also-?read|more-?news|popular)"
    r"(?:$|[-_\s])",
    re.I,
)
HOME_LINK = _HOME_LINK = re.compile(
    r"^\s*(go|back|return)\s+to\s+(the\s+)?(main|home)(\s+(site|page))?\W*$", re.I
)


def clean_element(node: Tag, remove: Iterable[str], base_url: str) -> str:
    """Article markup of ``node`` (mutated in place), sanitized; ``remove`` selectors go first."""
    for selector in remove:
        for hit in node.select(selector):
            hit.decompose()
    for hit in node.find_all(DROP_TAGS):
        hit.decompose()
    _drop_boilerplate(node)
    _amp_images(node)
    return sanitize(node.decode_contents(), base_url)


def _drop_boilerplate(node: Tag) -> None:
    for hit in node.find_all(True):
        if hit.decomposed:
            continue
        marks = " ".join([*(hit.get_attribute_list("class") or []), str(hit.get("id") or "")])
        furniture = bool(marks.strip()) and _BOILERPLATE.search(marks) is not None
        if furniture or (hit.name == "a" and _HOME_LINK.match(hit.get_text(" "))):
            hit.decompose()


def _amp_images(node: Tag) -> None:
    """<amp-img src alt> is AMP's <img>; keep it as one."""
    for amp in node.find_all("amp-img"):
        amp.name = "img"
        for extra in amp.find_all(True):
            extra.decompose()  # AMP's <noscript><img> fallback would double the picture


def sanitize(html: str, base_url: str) -> str:
    """The stored-HTML policy (:mod:`storage.safehtml`); relative links become absolute too."""
    return nh3.clean(
        html,
        **POLICY,
        attribute_filter=lambda tag, attr, value: _absolute(tag, attr, value, base_url),
    ).strip()


def _absolute(tag: str, attr: str, value: str, base_url: str) -> str | None:
    if attr in ("href", "src"):
        value = value.strip()
        if value.lower().startswith(("javascript:", "data:", "vbscript:")):
            return None
        try:
            return urljoin(base_url, value)
        except ValueError:
            return None
    return value


def parse_soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")
