"""Article extraction: one fetched page in, one :class:`storage.records.Article` out; no I/O.

The cascade (DESIGN.md decision 6): per-site rules (CSS selectors, YAML) → structured data
(JSON-LD, microdata) and meta tags → a generic extractor (trafilatura) for the body. Every field
records where it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.extract.article import EXTRACTOR_VERSION, extract
    from aggregator.extract.charset import decode_html
    from aggregator.extract.export import article_to_dict
    from aggregator.extract.rules import RuleError, SiteRule, SiteRules

__all__ = [
    "EXTRACTOR_VERSION",
    "RuleError",
    "SiteRule",
    "SiteRules",
    "article_to_dict",
    "decode_html",
    "extract",
]


def __getattr__(name: str) -> Any:
    """``extract`` and ``EXTRACTOR_VERSION`` load trafilatura and htmldate (about 20 MiB and a
    seventh of a second per process), the site rules soupsieve (a sixth of a second), the
    charset guess charset_normalizer: only on first use, so a poll that fetches no article page
    never pays for them (issue 14)."""
    if name in ("extract", "EXTRACTOR_VERSION"):
        from aggregator.extract import article

        return getattr(article, name)
    if name in ("RuleError", "SiteRule", "SiteRules"):
        from aggregator.extract import rules

        return getattr(rules, name)
    if name == "decode_html":  # charset_normalizer
        from aggregator.extract import charset

        return charset.decode_html
    if name == "article_to_dict":
        from aggregator.extract import export

        return export.article_to_dict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
