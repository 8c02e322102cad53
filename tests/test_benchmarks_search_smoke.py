"""Keeps the search benchmark runnable: a 2,000-item archive, every figure reported.

It measures nothing; it proves that the benchmark builds through ``apply_polls``, runs every
query of its set, sizes the index and times the write with and without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchrun import run_benchmark


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_search_benchmark_runs_at_tiny_scale(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = ["--items", "2000", "--write-items", "400", "--repeat", "2", "--feeds", "10",
            "--workdir", str(tmp_path / "work"), "--json", str(out)]  # fmt: skip
    proc = run_benchmark("search", argv, timeout=170)
    assert "p95" in proc.stdout and "items/s with the index" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["items"] == 2000 and figures["articles"] == 40
    assert 0 < figures["index_bytes"] < figures["db_bytes"]
    assert len(figures["queries"]) == 12
    assert all(q["p50_ms"] > 0 and q["total"] is not None for q in figures["queries"].values())
    # (at 2,000 items no query reaches storage.search.COUNT_LIMIT: every total is counted)
    common = next(q for name, q in figures["queries"].items() if name.startswith("common"))
    assert common["total"] > 100  # the vocabulary is Zipfian: its first word is everywhere
    assert figures["write"]["with_index"] > 0 and figures["write"]["without_index"] > 0
