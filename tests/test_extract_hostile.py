"""Hostile pages never crash extraction: an ExtractError or a sane Article, in bounded time."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ExtractError
from aggregator.extract import SiteRules, decode_html, extract
from storage.records import Article

URL = "https://hostile.example/page"
SENTENCE = "A plain sentence of an ordinary article, long enough to count as text. "
PARA = "<p>" + SENTENCE * 4 + "</p>"
RULES = SiteRules.load([{"domains": ["ruled.example"], "body": ["main"], "title": ["h1"]}])


def run(html: str, url: str = URL, limit: float = 20.0) -> Article | None:
    """Extract within ``limit`` seconds; None when the page is (rightly) refused."""
    start = time.monotonic()
    try:
        article: Article | None = extract(html, url, RULES)
    except ExtractError:
        article = None
    assert time.monotonic() - start < limit
    return article


def deep(depth: int) -> str:
    return "<html><body>" + "<div>" * depth + PARA + "</div>" * depth + "</body></html>"


@pytest.mark.parametrize("url", [URL, "https://ruled.example/a"])
def test_100000_deep_nesting(url: str) -> None:
    run(deep(100_000), url)


def test_64kb_title_is_cut() -> None:
    html = f"<html><head><title>{'T' * 65536}</title></head><body><h1>{'H' * 65536}</h1>"
    article = run(html + PARA * 3 + "</body></html>")
    assert article is not None
    assert article.title is None or len(article.title) <= 1000


def test_huge_page_is_bounded() -> None:
    html = "<html><body><article>" + PARA * 40_000 + "</article></body></html>"  # ~12 MB
    run(html, limit=60.0)


def test_many_articles_and_json_ld_blocks() -> None:
    block = ('<script type="application/ld+json">{"@type":"NewsArticle","headline":"H"}</script>'
             "<article><h2>Story</h2>" + PARA * 3 + "</article>")
    article = run("<html><body>" + block * 2000 + "</body></html>")
    assert article is not None and article.text.count("A plain sentence") <= 12


def test_deep_json_ld() -> None:
    ld = '{"@graph":' * 5000 + "{}" + "}" * 5000
    head = f'<head><script type="application/ld+json">{ld}</script></head>'
    run(f"<html>{head}<body>{PARA}</body></html>")


@pytest.mark.parametrize("make", [
    lambda: "<html><head><title>x</title></head></html>",
    lambda: "<?xml version='1.0'?><rss><channel><item><title>x</title></item></channel></rss>",
    lambda: "\x00\x01\x02" * 1000,
    lambda: decode_html(bytes(range(256)) * 400, None),
    lambda: "<" * 100_000,
    lambda: "<html><body>" + "<p>" * 50_000,
    lambda: '<html><body><p class="' + "x" * 1_000_000 + '">y</p></body></html>',
    lambda: "<html><body><table>" + "<tr><td>cell</td></tr>" * 50_000 + "</table></body></html>",
])
def test_garbage_is_refused_or_sane(make: Callable[[], str]) -> None:
    article = run(make())
    assert article is None or isinstance(article.text, str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000), st.sampled_from([URL, "https://ruled.example/x", "not a url"]))
def test_random_text_raises_only_extract_error(html: str, url: str) -> None:
    run(html, url)


TAGS = st.sampled_from(["p", "div", "article", "h1", "script", "a", "li", "ul", "main", "br",
                        "amp-img", "figure", "nav", "table", "td"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TAGS, st.text(max_size=40), st.booleans()), max_size=200))
def test_random_markup_raises_only_extract_error(parts: list[tuple[str, str, bool]]) -> None:
    html = "".join(f"<{t}>{s}" + (f"</{t}>" if close else "") for t, s, close in parts)
    article = run(html)
    if article is not None:
        assert article.text.strip()
        assert "<script" not in article.html
