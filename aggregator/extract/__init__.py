"""Article extraction: one fetched page in, one :class:`storage.records.Article` out; no I/O.

The cascade (DESIGN.md decision 6): per-site rules (CSS selectors, YAML) → structured data
(JSON-LD, microdata) and meta tags → a generic extractor (trafilatura) for the body. Every field
records where it came from.
"""

from __future__ import annotations

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
