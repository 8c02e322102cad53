"""Pages per second of our extract() beside trafilatura.extract, in the same run, same pages.

    python benchmarks/extract.py [DIR ...] [--repeat N] [--json]

DIR holds pages as *.html or *.html.gz (default: tests/data/pages). A page's URL comes from its
golden ``NAME.expected.json`` when there is one, else a placeholder URL (no site rule applies).
Both extractors run in this process, alternating rounds after one untimed warm-up round (first
calls load models and stoplists), so machine load hits them alike; the ratio of the two rates
is the figure to compare between runs, printed with the load average it was measured under.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.errors import ExtractError  # noqa: E402  (after the path fix for a checkout)
from aggregator.extract import SiteRules, extract  # noqa: E402

Page = tuple[str, str, str]  # (name, html, url)


def load_pages(folders: Sequence[Path]) -> list[Page]:
    pages: list[Page] = []
    for folder in folders:
        for path in sorted(folder.glob("*.html*")):
            if path.suffix not in (".html", ".gz"):
                continue
            raw = path.read_bytes()
            data = gzip.decompress(raw) if path.suffix == ".gz" else raw
            html = data.decode("utf-8", "replace")
            name = path.name.removesuffix(".gz").removesuffix(".html")
            pages.append((name, html, _url(path.parent, name)))
    return pages


def _url(folder: Path, name: str) -> str:
    spec = folder / f"{name}.expected.json"
    if spec.exists():
        return str(json.loads(spec.read_text(encoding="utf-8"))["input"]["url"])
    return f"https://example.invalid/{name}"


def ours(rules: SiteRules) -> Callable[[str, str], object]:
    def run(html: str, url: str) -> object:
        try:
            return extract(html, url, rules)
        except ExtractError:
            return None
    return run


def theirs(html: str, url: str) -> object:
    return trafilatura.extract(html, url=url, favor_precision=True)


def measure(pages: list[Page], repeat: int) -> dict[str, float]:
    """Seconds spent by each extractor over all pages, ``repeat`` rounds, alternating."""
    runners = {"archiver extract()": ours(SiteRules.load()), "trafilatura.extract": theirs}
    for run in runners.values():
        for _, html, url in pages:
            run(html, url)
    spent = dict.fromkeys(runners, 0.0)
    for round_ in range(repeat):
        order = list(runners) if round_ % 2 == 0 else list(reversed(runners))
        for label in order:
            start = time.perf_counter()
            for _, html, url in pages:
                runners[label](html, url)
            spent[label] += time.perf_counter() - start
    return spent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", type=Path, default=[ROOT / "tests" / "data" / "pages"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    pages = load_pages(args.dirs)
    if not pages:
        parser.error(f"no *.html or *.html.gz pages in {', '.join(map(str, args.dirs))}")
    spent = measure(pages, args.repeat)
    done = len(pages) * args.repeat
    rates = {label: done / seconds if seconds else 0.0 for label, seconds in spent.items()}
    mine, theirs_rate = rates["archiver extract()"], rates["trafilatura.extract"]
    ratio = mine / theirs_rate if theirs_rate else 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else -1.0
    if args.json:
        print(json.dumps({
            "pages": len(pages), "repeat": args.repeat, "pages_per_second": rates,
            "ratio": round(ratio, 3), "load_average": round(load, 2),
        }))
    else:
        print(f"{len(pages)} pages x {args.repeat} rounds (load average {load:.2f})")
        for label, rate in rates.items():
            print(f"  {label:22} {rate:8.1f} pages/s")
        print(f"  ours / trafilatura     {ratio:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
