"""Keeps benchmarks/soakmetrics.py runnable: its arithmetic, and one tiny round of each side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.soakmetrics import compare
from tests.benchrun import run_benchmark


def test_compare_takes_medians_per_side() -> None:
    runs = [{"listen": False, "polls_per_s": 100.0, "cpu_s_per_1000_polls": 4.0},
            {"listen": True, "polls_per_s": 99.0, "cpu_s_per_1000_polls": 4.04},
            {"listen": False, "polls_per_s": 50.0, "cpu_s_per_1000_polls": 9.0},
            {"listen": True, "polls_per_s": 97.0, "cpu_s_per_1000_polls": 4.2}]
    result = compare(runs)
    assert result["without"] == {"polls_per_s": 75.0, "cpu_s_per_1000_polls": 6.5}
    assert result["with"] == {"polls_per_s": 98.0, "cpu_s_per_1000_polls": 4.12}
    assert result["throughput_overhead_percent"] == -30.67
    assert result["cpu_overhead_percent"] == -36.62


@pytest.mark.timeout(200)
def test_one_tiny_round_scrapes_the_running_service(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    run_benchmark("soakmetrics", ["--minutes", "0.4", "--rounds", "1", "--feeds", "40",
                                  "--json", str(out)], timeout=190)
    result = json.loads(out.read_text())
    off, on = result["runs"]
    assert off["exit_code"] == on["exit_code"] == 0
    assert off["scrapes"] == [] and on["scrapes"]
    polls, memory, health = on["scrapes"][-1][1:]
    assert polls > 0 and memory > 10e6 and health == 200
