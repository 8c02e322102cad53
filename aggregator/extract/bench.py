"""Adapter for the extraction scorer (bench/extraction/score.py): (html, url) → dict; no I/O."""

from __future__ import annotations

from typing import Any

from aggregator.errors import ExtractError
from aggregator.extract.article import extract
from aggregator.extract.rules import SiteRules
from storage.records import Article

_RULES = SiteRules.load()  # the shipped presets, loaded once: the scorer calls per page


def score_page(html: str, url: str | None) -> dict[str, Any]:
    """What the scorer compares: text, title, date (ISO 8601) and authors."""
    try:
        article = extract(html, url or "https://example.invalid/", _RULES)
    except ExtractError:
        return {"text": "", "title": None, "date": None, "authors": []}
    return {
        "text": article.text,
        "title": article.title,
        "date": _date(article),
        "authors": list(article.authors),
    }


def _date(article: Article) -> str | None:
    """The time with its offset, or the day when the page gives only a day."""
    if article.published is not None:
        return article.published.isoformat()
    return article.published_date.isoformat() if article.published_date else None
