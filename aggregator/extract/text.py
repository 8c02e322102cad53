"""Sanitized article HTML to plain text, one paragraph per block; never sees a whole page."""

from __future__ import annotations

import re

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]

from aggregator.extract.trees import fragment

BLOCKS = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "figcaption", "pre", "tr",
    "div", "section", "article", "dd", "dt", "ul", "ol", "dl", "table", "figure", "caption",
    "header", "footer", "main", "aside", "address", "details", "summary", "hr", "td", "th",
})
_SOURCE_SPACE = re.compile(r"\s+")  # newlines in the source are spaces; only <br> breaks a line
_INLINE_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def html_to_text(html: str) -> str:
    """Blocks separated by a blank line; <br> stays a line break inside its block."""
    if not html.strip():
        return ""
    return element_text(fragment(html))


def element_text(root: HtmlElement) -> str:
    """html_to_text of a fragment already parsed (the polish passes' tree)."""
    blocks: list[str] = []
    current: list[str] = []
    _walk(root, blocks, current)
    _flush(blocks, current)
    return "\n\n".join(blocks)


def _walk(node: HtmlElement, blocks: list[str], current: list[str]) -> None:
    """Iterative, so 100,000 nested elements cannot exhaust the stack."""
    for event, elem in etree.iterwalk(node, events=("start", "end")):
        tag = elem.tag if isinstance(elem.tag, str) else ""
        if event == "start":
            if tag in BLOCKS:
                _flush(blocks, current)
            elif tag == "br":
                current.append("\n")
            if elem.text and tag not in ("script", "style"):
                current.append(_SOURCE_SPACE.sub(" ", elem.text))
        else:
            if tag in BLOCKS:
                _flush(blocks, current)
            if elem.tail and elem is not node:
                current.append(_SOURCE_SPACE.sub(" ", elem.tail))


def _flush(blocks: list[str], current: list[str]) -> None:
    if not current:
        return
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in "".join(current).split("\n"))
    text = "\n".join(line for line in lines if line)
    current.clear()
    if text:
        blocks.append(text)
