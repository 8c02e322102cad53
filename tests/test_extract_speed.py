"""The shortcuts that make extraction faster than trafilatura keep its results (issue 17).

Each test states what a shortcut may skip and checks, on a page, that skipping it changes nothing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from lxml import etree
from lxml.html import HtmlElement

from aggregator.extract import SiteRule, SiteRules
from aggregator.extract.article import parse_page
from aggregator.extract.generic import (
    _CONFIRM,
    _SHORT,
    _Text,
    _to_confirm,
    _trafilatura,
    drop_never_text,
    only_first_article,
)
from aggregator.extract.ruledoc import SoupDoc, TreeDoc, rule_doc
from aggregator.extract.trees import fragment

PAGES = Path(__file__).resolve().parent / "data" / "pages"


def _body(*paragraphs: str) -> etree._Element:
    body = etree.Element("body")
    for text in paragraphs:
        etree.SubElement(body, "p").text = text
    return body


class _Page(_Text):
    """A page of a given text length, without a tree."""

    def __init__(self, length: int) -> None:
        self._length = length


def test_never_text_goes_its_tail_stays_and_json_ld_stays() -> None:
    root = parse_page(
        "<html><head><title>T</title><meta name='a' content='b'>"
        "<script type='application/ld+json'>{\"@type\": \"NewsArticle\"}</script>"
        "<script>var x = 1;</script></head><body> "
        "<p>one <nav>menu</nav>two <img src='a.png'>three <small>four</small></p> "
        "<footer>footer</footer> <aside>aside</aside> five</body></html>",
        "https://a.example/",
    )
    drop_never_text(root)
    text = " ".join(root.text_content().split())
    assert text == '{"@type": "NewsArticle"} one two three four five'
    assert [e.tag for e in root.iter("script")] == ["script"]
    assert root.find(".//img") is None and root.find(".//small") is None


@pytest.mark.parametrize(
    ("paragraphs", "page", "confirm"),
    [
        (["short"], 10_000, True),  # below _SHORT: trafilatura's comparison may replace it
        (["x" * (_SHORT + 100)], 2 * _SHORT + 199, False),  # no text anywhere to double it
        (["x" * (_SHORT + 100)], 2 * _SHORT + 201, True),  # readability could find twice as much
        (["x" * (_CONFIRM + 1)], 100_000, False),  # long enough to stand
    ],
)
def test_the_fast_pass_is_confirmed_only_when_the_full_cascade_could_differ(
    paragraphs: list[str], page: int, confirm: bool
) -> None:
    assert _to_confirm(_body(*paragraphs), _Page(page)) is confirm


def test_a_fast_text_with_furniture_or_no_paragraphs_is_confirmed() -> None:
    long = "x" * (_CONFIRM + 1)
    furnished = _body(long)
    etree.SubElement(furnished, "figure").text = "caption"
    assert _to_confirm(furnished, _Page(100_000))
    only_cells = etree.Element("body")
    etree.SubElement(etree.SubElement(only_cells, "table"), "td").text = long
    assert _to_confirm(only_cells, _Page(100_000))
    assert _to_confirm(None, _Page(100_000))


def test_a_fast_pass_left_standing_is_what_the_full_cascade_gives() -> None:
    """On every golden page: where the fast pass stands alone, the full cascade agrees (pages
    where it is confirmed run the full cascade anyway; at least some must stand alone)."""
    standing = []
    for page in sorted(PAGES.glob("*.html")):
        tree = only_first_article(parse_page(page.read_text(encoding="utf-8"),
                                             "https://a.example/"))
        drop_never_text(tree)
        fast = _trafilatura(copy.deepcopy(tree), precision=True, fast=True)
        if _to_confirm(fast, _Text(tree)):
            continue
        full = _trafilatura(copy.deepcopy(tree), precision=True)
        assert etree.tostring(fast) == etree.tostring(full), page.name
        standing.append(page.name)
    assert len(standing) >= 3, standing


def test_parsed_elements_are_html_elements() -> None:
    root = parse_page("<html><body><form><input name=q></form><p>x</p></body></html>", "u")
    assert all(isinstance(e, HtmlElement) for e in root.iter())
    part = fragment("<p>a <b>b</b></p>")
    assert isinstance(part[0], HtmlElement) and part.text_content() == "a b"


KAZINFORM = sorted(p.name for p in PAGES.glob("kazinform-*.html"))


@pytest.mark.parametrize("page", KAZINFORM)
def test_the_site_rule_reads_the_same_from_the_tree_as_from_a_soup(page: str) -> None:
    """The tree path (cssselect) and the soup path (soupsieve) agree on every selector."""
    html = (PAGES / page).read_text(encoding="utf-8")
    url = json.loads((PAGES / page.replace(".html", ".expected.json")).read_text())["input"]["url"]
    rule = SiteRules.load().for_url(url)
    assert rule is not None
    tree, soup = TreeDoc(parse_page(html, url)), SoupDoc(html)
    selectors = (*rule.title, *rule.published, *rule.modified, *rule.authors, *rule.dateline)
    for selector in selectors:
        assert [tree.text(h) for h in tree.select(selector)] == [
            soup.text(h) for h in soup.select(selector)
        ], selector
        assert [tree.elsewhere(h) for h in tree.select(selector)] == [
            soup.elsewhere(h) for h in soup.select(selector)
        ], selector
    bodies = [s for s in (*rule.amp_body, *rule.body) if tree.select(s)]
    assert len(bodies) == len([s for s in (*rule.amp_body, *rule.body) if soup.select(s)])
    for selector in bodies:  # (the second AMP markup has none: its body is the generic one)
        got = tree.body_html(tree.select(selector)[0], rule.remove, url)
        assert got == soup.body_html(soup.select(selector)[0], rule.remove, url), selector


def test_a_selector_only_soupsieve_reads_falls_back_to_a_soup() -> None:
    html = "<html><body><h1>Hi there</h1></body></html>"
    root = parse_page(html, "https://a.example/")
    plain = SiteRule(domains=("a.example",), title=("h1",))
    assert isinstance(rule_doc(root, html, plain), TreeDoc)
    soupy = SiteRule(domains=("a.example",), title=("h1:-soup-contains('Hi')",))
    doc = rule_doc(root, html, soupy)
    assert isinstance(doc, SoupDoc)
    assert [doc.text(h) for h in doc.select(soupy.title[0])] == ["Hi there"]
