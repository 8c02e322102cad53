"""Metadata quality of extract(): title, authors and published date against hand labels.

    python -m benchmarks.extract_meta [--pages DIR] [--labels FILE] [--misses] [--json]

The labels (benchmarks/data/extraction-metadata.json; how they were made: benchmarks/data/README.md)
name pages of the shared dev set (../shared/bench/extraction/scrapinghub/html/<id>.html.gz), which
is not part of the project: without it this prints a note and exits 0 (a CI runner has no copy).
Scores, each over the pages whose label has the field:
  title         exact after whitespace and quote normalization (case kept)
  authors       the same set of names (case- and space-blind); pages labelled "no person" count too
  authors_f1    mean token F1 over the pages that name someone (the shared scorer's measure)
  date_day      the calendar day as the page states it (in the offset each side gives)
  date_exact    a time label: same instant and same UTC offset, to the minute;
                a day label: the same day, stated as a day or at any time of it
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.errors import ExtractError  # noqa: E402  (after the path fix for a checkout)
from aggregator.extract import SiteRules, extract  # noqa: E402

LABELS = ROOT / "benchmarks" / "data" / "extraction-metadata.json"
PAGES = ROOT.parent / "shared" / "bench" / "extraction" / "scrapinghub" / "html"
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"',
                         "„": '"', "«": '"', "»": '"', "′": "'", "″": '"'})  # fmt: skip


def norm_title(text: str | None) -> str:
    """Whitespace and quote normalization only: case and words must match."""
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES)
    return " ".join(text.split())


def norm_name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _tokens(names: Sequence[str]) -> list[str]:
    return re.findall(r"\w+", norm_name(" ".join(names)))


def token_f1(gold: Sequence[str], got: Sequence[str]) -> float:
    g, p = _tokens(gold), _tokens(got)
    common = sum(min(g.count(t), p.count(t)) for t in set(g))
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def predicted_date(article: Any) -> tuple[date | None, datetime | None]:
    """(day as the page states it, full time if the extractor gave one)."""
    day_only = getattr(article, "published_date", None)
    if isinstance(day_only, date) and not isinstance(day_only, datetime):
        return day_only, None
    when = getattr(article, "published", None)
    return (when.date(), when) if isinstance(when, datetime) else (None, None)


def date_scores(label: str, article: Any) -> tuple[bool, bool]:
    """(same day, exact) for one page; see the module docstring."""
    day, when = predicted_date(article)
    if len(label) == 10:
        ok = day is not None and day.isoformat() == label
        return ok, ok
    gold = datetime.fromisoformat(label)
    same_day = day is not None and day == gold.date()
    exact = (
        when is not None
        and when.utcoffset() == gold.utcoffset()
        and when.replace(second=0, microsecond=0) == gold.replace(second=0, microsecond=0)
    )
    return same_day, exact


def score_page(label: dict[str, Any], article: Any) -> dict[str, Any]:
    """One page's record: what was expected, what came out, and which fields were right."""
    title = getattr(article, "title", None)
    authors = list(getattr(article, "authors", ()) or ())
    rec: dict[str, Any] = {"id": label["id"][:10], "url": label["url"]}
    rec["title_ok"] = norm_title(title) == norm_title(label["title"]) and bool(norm_title(title))
    gold_names = {norm_name(a) for a in label["authors"]}
    rec["authors_ok"] = gold_names == {norm_name(a) for a in authors}
    if label["authors"]:
        rec["authors_f1"] = token_f1(label["authors"], authors)
    if label["published"]:
        rec["date_day_ok"], rec["date_exact_ok"] = date_scores(label["published"], article)
    day, when = predicted_date(article)
    rec["got"] = {"title": title, "authors": authors,
                  "published": when.isoformat() if when else (day.isoformat() if day else None)}
    rec["want"] = {k: label[k] for k in ("title", "authors", "published")}
    return rec


def summarize(records: list[dict[str, Any]]) -> dict[str, float]:
    def mean(key: str) -> float:
        values = [float(r[key]) for r in records if key in r]
        return sum(values) / len(values) if values else 0.0

    return {
        "pages": float(len(records)),
        "title": mean("title_ok"),
        "authors": mean("authors_ok"),
        "authors_f1": mean("authors_f1"),
        "date_day": mean("date_day_ok"),
        "date_exact": mean("date_exact_ok"),
    }


def run(labels: list[dict[str, Any]], pages: Path) -> list[dict[str, Any]]:
    rules = SiteRules.load()
    records = []
    for label in labels:
        html = gzip.decompress((pages / f"{label['id']}.html.gz").read_bytes()).decode("utf-8")
        try:
            article: Any = extract(html, label["url"], rules)
        except ExtractError:
            article = None
        records.append(score_page(label, article))
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, default=PAGES, help="folder of <id>.html.gz")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--misses", action="store_true", help="list each wrong field")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.pages.is_dir():
        print(f"extract_meta: no dev pages at {args.pages}; nothing measured")
        return 0
    labels = json.loads(args.labels.read_text(encoding="utf-8"))["pages"]
    records = run(labels, args.pages)
    figures = summarize(records)
    if args.misses:
        _print_misses(records)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{int(figures['pages'])} labeled pages")
        for key in ("title", "authors", "authors_f1", "date_day", "date_exact"):
            print(f"  {key:11} {figures[key]:.3f}")
    return 0


def _print_misses(records: list[dict[str, Any]]) -> None:
    checks = (("title_ok", "title"), ("authors_ok", "authors"), ("date_exact_ok", "published"))
    for rec in records:
        for ok, field in checks:
            if ok in rec and not rec[ok]:
                print(f"{rec['id']} {field}: got {rec['got'][field]!r} want {rec['want'][field]!r}")


if __name__ == "__main__":
    raise SystemExit(main())
