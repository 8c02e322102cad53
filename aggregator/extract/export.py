"""An Article as the export writes it: plain JSON values; no parsing, no I/O."""

from __future__ import annotations

from typing import Any

from storage.records import Article


def article_to_dict(a: Article) -> dict[str, Any]:
    """ISO 8601 dates with their offset, authors as a list, sources as {field: source}.

    ``published_date`` appears only when the page gave a day without a time (then ``published``
    is null): old readers see what they saw before, new ones the day as stated.
    """
    return {
        "title": a.title,
        "text": a.text,
        "html": a.html,
        "authors": list(a.authors),
        "published": a.published.isoformat() if a.published else None,
        "modified": a.modified.isoformat() if a.modified else None,
        "language": a.language,
        "canonical_url": a.canonical_url,
        "image": a.image,
        "dateline": a.dateline,
        "sources": dict(a.sources),
        "extractor": a.extractor,
        **({"published_date": a.published_date.isoformat()} if a.published_date else {}),
    }
