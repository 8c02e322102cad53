"""The extraction benchmark stays runnable, and the fixture pages keep an evaluation gate.

The gate (after trafilatura's tests/eval_gate.py): every golden page's text, extracted WITHOUT
site rules (the generic path), must keep a pinned word-4-gram F1 against its expected text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from aggregator.extract import SiteRules, extract

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "data" / "pages"
# Pinned floors of the generic path (no site rule) per golden page; raise them, never lower.
GENERIC_F1_FLOOR = {
    "kazinform-article": 1.0,
    "kazinform-article-amp": 1.0,
    "kazinform-article-amp2": 1.0,
    "old-markup": 1.0,
    "listing-scroll": 1.0,
    "suffix-title": 1.0,
    "user-rule": 0.6,  # a CMS-less page: without its rule the generic path loses the caption
}


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    import re

    words = re.findall(r"\w+", text.casefold())
    return Counter(tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1)))


def f1(expected: str, got: str) -> float:
    want, have = shingles(expected), shingles(got)
    hit = sum((want & have).values())
    if not hit:
        return 0.0
    precision, recall = hit / sum(have.values()), hit / sum(want.values())
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("name", sorted(GENERIC_F1_FLOOR))
def test_generic_path_keeps_its_floor(name: str) -> None:
    spec = json.loads((PAGES / f"{name}.expected.json").read_text(encoding="utf-8"))
    expected = (PAGES / f"{name}.expected.txt").read_text(encoding="utf-8")
    html = (PAGES / f"{name}.html").read_text(encoding="utf-8")
    got = extract(html, spec["input"]["url"], SiteRules.load(presets=False))
    assert f1(expected, got.text) >= GENERIC_F1_FLOOR[name]


def test_every_golden_page_has_a_floor() -> None:
    assert {p.name.removesuffix(".expected.json") for p in PAGES.glob("*.expected.json")} == set(
        GENERIC_F1_FLOOR
    )


def test_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "extract.py"), "--repeat", "1", "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    figures = json.loads(out.stdout)
    assert figures["pages"] >= 5
    assert set(figures["pages_per_second"]) == {"archiver extract()", "trafilatura.extract"}
    assert all(rate > 0 for rate in figures["pages_per_second"].values())
    assert figures["ratio"] > 0  # ours over trafilatura's rate: the figure issue 17 judges
    assert isinstance(figures["load_average"], float)
