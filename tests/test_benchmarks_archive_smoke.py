"""Keeps the archive benchmark runnable: a 2,000-item build, exports at 1,000 and 2,000, figures.

It measures nothing; it proves that the benchmark builds through ``apply_poll``, exports in a
fresh subprocess at each checkpoint, and reports every figure the issue asks for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchrun import run_benchmark


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_archive_benchmark_runs_at_tiny_scale(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = ["--items", "2000", "--checkpoints", "1000", "--feeds", "20", "--per-poll", "50",
            "--workdir", str(tmp_path / "work"), "--json", str(out)]  # fmt: skip
    proc = run_benchmark("archive", argv, timeout=170)
    assert "items/s" in proc.stdout and "peak RSS" in proc.stdout and "ratio" in proc.stdout
    figures = json.loads(out.read_text())
    stats = figures["stats"]
    assert stats["items"] == 2000
    assert stats["sightings"] > stats["items"]  # some stories were folded across feeds
    assert stats["revisions"] > stats["items"]  # retitled stories and articles made revisions
    assert [e["items"] for e in figures["exports"]] == [1000, 2000]
    assert all(e["peak_rss_mib"] > 0 and e["items_per_s"] > 0 for e in figures["exports"])
    assert 0 < stats["captures"] < stats["items"]  # only some items carry a page
    assert stats["compression_ratio"] > 2  # HTML pages compress well
    assert figures["build_items_per_s"] > 0 and figures["db_bytes_per_item"] > 1000
    assert not list((tmp_path / "work").glob("*.jsonl"))  # export files are removed
