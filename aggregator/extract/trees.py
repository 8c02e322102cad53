"""lxml parsers for the cascade: every element an HtmlElement, its class chosen in C; no I/O.

lxml.html's own class lookup runs Python for each element Python touches (to pick form mixins
nobody here uses); the cascade and trafilatura touch the page's elements often (issue 17, speed).
"""

from __future__ import annotations

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import (  # type: ignore[import-untyped,unused-ignore]
    HtmlComment,
    HtmlElement,
    HtmlEntity,
    HTMLParser,
    HtmlProcessingInstruction,
    fragment_fromstring,
)

_CLASSES = etree.ElementDefaultClassLookup(
    element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
)


def html_parser(**options: bool) -> HTMLParser:
    """A new parser (one per call: lxml parsers are not for sharing between threads)."""
    parser = HTMLParser(**options)
    parser.set_element_class_lookup(_CLASSES)
    return parser


def fragment(html: str) -> HtmlElement:
    """Article HTML as a tree under one <div>: the polish passes share one parse."""
    return fragment_fromstring(html, create_parent="div", parser=html_parser())
