"""Golden pages through the extraction cascade: each ``pages/NAME.html`` beside its expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import ExtractError
from aggregator.extract import (
    EXTRACTOR_VERSION,
    SiteRules,
    article_to_dict,
    extract,
)

PAGES = Path(__file__).parent / "data" / "pages"
GOLDEN = sorted(p.name.removesuffix(".expected.json") for p in PAGES.glob("*.expected.json"))
KAZ_URL = (
    "https://www.inform.kz/en/"
    "kassym-jomart-tokayev-receives-minister-of-internal-affairs-yerlan-turgumbayev_a3780153"
)
KAZ_AMP_URL = KAZ_URL.replace("/en/", "/en/amp/")
KAZ_TITLE = "Kassym-Jomart Tokayev receives Minister of Internal Affairs Yerlan Turgumbayev"
# Strings of the page around the Kazinform article; none may reach the article.
KAZ_FURNITURE = (
    "Go to the main site", "Share", "Facebook", "Telegram", "Related news", "Read also",
    "Head of State receives Prosecutor General", "Latest news", "All rights reserved", "Politics",
    "Tags:", "Photo: Akorda", "USD", "Advertisement", "Full version", "Menu", "20 April 2021",
)


def page(name: str) -> str:
    return (PAGES / f"{name}.html").read_text(encoding="utf-8")


def golden_case(name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    spec = json.loads((PAGES / f"{name}.expected.json").read_text(encoding="utf-8"))
    text = (PAGES / f"{name}.expected.txt").read_text(encoding="utf-8").removesuffix("\n")
    return spec["input"], spec["article"], text


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_page(name: str) -> None:
    given, expected, text = golden_case(name)
    rules = SiteRules.load(given.get("rules", ()), presets=given["presets"])
    got = article_to_dict(extract(page(name), given["url"], rules))
    assert got.pop("text") == text
    html = got.pop("html")
    assert got == expected
    assert html.strip()


def test_golden_set_is_not_empty() -> None:
    assert {"kazinform-article", "kazinform-article-amp"} <= set(GOLDEN)


@pytest.mark.parametrize(("name", "url"), [("kazinform-article", KAZ_URL),
                                           ("kazinform-article-amp", KAZ_AMP_URL)])
def test_kazinform_is_exactly_the_article(name: str, url: str) -> None:
    article = extract(page(name), url, SiteRules.load())
    assert article.title == KAZ_TITLE
    assert article.published is not None
    assert article.published.isoformat() == "2021-04-20T17:05:00+06:00"
    assert article.dateline == "NUR-SULTAN. KAZINFORM"
    assert article.text.startswith("NUR-SULTAN. KAZINFORM – President of Kazakhstan")
    assert article.text.endswith("the Ministry’s information policy.")
    assert article.text.count("\n\n") == 6  # seven paragraphs
    assert dict(article.sources)["html"] == "site_rule"
    for junk in KAZ_FURNITURE:
        assert junk not in article.text, junk
        assert junk not in article.html, junk


@pytest.mark.parametrize(("name", "url"), [("kazinform-article", KAZ_URL),
                                           ("kazinform-article-amp", KAZ_AMP_URL)])
def test_kazinform_without_a_rule_keeps_headline_and_day(name: str, url: str) -> None:
    """Structured data and the generic extractor alone: headline and calendar day still right."""
    article = extract(page(name), url, SiteRules.load(presets=False))
    sources = dict(article.sources)
    assert article.title == KAZ_TITLE
    assert sources["title"] == "structured_data"
    assert sources["html"] == "generic"
    assert article.published is not None
    assert article.published.date().isoformat() == "2021-04-20"
    assert (article.published.hour, article.published.minute) == (17, 5)
    assert article.text == golden_case(name)[2]


def test_kazinform_rule_covers_every_domain_and_subdomain() -> None:
    rules = SiteRules.load()
    for host in ("inform.kz", "www.inform.kz", "qazinform.com", "amp.qazinform.com",
                 "kazinform.kz", "www.kazinform.kz"):
        rule = rules.for_url(f"https://{host}/en/some-news_a1")
        assert rule is not None and "inform.kz" in rule.domains, host


def test_listing_page_gives_only_the_first_story() -> None:
    article = extract(page("listing-scroll"), "https://harbour-courier.example/n", SiteRules())
    assert article.authors == ("Morag Campbell",)
    assert "cycle lanes" not in article.text
    assert "Lifeboat" not in article.text


def test_html_is_sanitized_and_links_absolute() -> None:
    given, _, _ = golden_case("user-rule")
    article = extract(page("user-rule"), given["url"], SiteRules.load(given["rules"]))
    for bad in ("<script", "onclick", "javascript:", "data:", "<iframe", "<form", "<base",
                "refresh", "<input", "Buy our archiving course"):
        assert bad not in article.html, bad
    assert 'href="https://notes.example.org/guides/compression"' in article.html
    assert 'src="https://notes.example.org/posts/img/shelf.jpg"' in article.html
    assert "<figcaption>Boxes on a shelf.</figcaption>" in article.html


def test_title_loses_outlet_suffix_and_date_keeps_its_offset() -> None:
    article = extract(page("suffix-title"), "https://steppe-weekly.example/x", SiteRules())
    assert article.title == "Rivers of the steppe return after a dry decade"
    assert article.published is not None
    assert article.published.isoformat() == "2023-07-14T23:30:00-04:00"
    assert "Share on Facebook" not in article.text
    assert "Newsletter" not in article.text
    assert "You may also like" not in article.text


def test_user_rule_overrides_the_preset() -> None:
    user = [{"domains": ["inform.kz"], "body": [".article__related"]}]
    article = extract(page("kazinform-article"), KAZ_URL, SiteRules.load(user))
    assert "Head of State receives Prosecutor General" in article.text


def test_export_shape() -> None:
    article = extract(page("kazinform-article"), KAZ_URL, SiteRules.load())
    exported = article_to_dict(article)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["extractor"] == EXTRACTOR_VERSION
    assert exported["sources"]["title"] == "site_rule"
    assert set(exported) == {
        "title", "text", "html", "authors", "published", "modified", "language",
        "canonical_url", "image", "dateline", "sources", "extractor",
    }


def test_extract_is_deterministic() -> None:
    rules = SiteRules.load()
    assert extract(page("kazinform-article"), KAZ_URL, rules) == extract(
        page("kazinform-article"), KAZ_URL, rules
    )


@pytest.mark.parametrize("html", ["", "   ", "just some words, no markup", "<html></html>",
                                  "<html><body></body></html>",
                                  "<html><body><nav><a href='/'>Home</a></nav></body></html>"])
def test_no_article_is_an_extract_error_naming_the_url(html: str) -> None:
    with pytest.raises(ExtractError, match=r"^extract: .*https://x\.example/a$"):
        extract(html, "https://x.example/a", SiteRules())


def test_json_ld_article_body_is_the_last_resort() -> None:
    html = ('<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
            '"headline": "Short", "articleBody": "First line.\\nSecond line."}</script></head>'
            "<body><div></div></body></html>")
    article = extract(html, "https://x.example/a", SiteRules())
    assert article.text == "First line.\n\nSecond line."
    assert dict(article.sources)["html"] == "structured_data"


@pytest.mark.parametrize(("first", "dateline"), [
    ("NUR-SULTAN. KAZINFORM – President of …", "NUR-SULTAN. KAZINFORM"),
    ("АСТАНА. КАЗИНФОРМ – Глава государства …", "АСТАНА. КАЗИНФОРМ"),
    ("АҚТӨБЕ. ҚАЗАҚПАРАТ – Облыс әкімі …", "АҚТӨБЕ. ҚАЗАҚПАРАТ"),
])
def test_kazinform_datelines_in_every_language(first: str, dateline: str) -> None:
    html = page("kazinform-article").replace(
        "NUR-SULTAN. KAZINFORM – President of", first.removesuffix(" …"), 1
    )
    article = extract(html, KAZ_URL, SiteRules.load())
    assert article.dateline == dateline
    assert dict(article.sources)["dateline"] == "site_rule"


def test_rule_whose_body_is_missing_falls_back_to_the_cascade() -> None:
    rules = SiteRules.load([{"domains": ["steppe-weekly.example"], "body": [".no-such-thing"],
                             "authors": [".meta"]}])
    article = extract(page("suffix-title"), "https://steppe-weekly.example/x", rules)
    sources = dict(article.sources)
    assert sources["html"] == "generic"
    assert sources["authors"] == "site_rule"
    assert article.text == golden_case("suffix-title")[2]
