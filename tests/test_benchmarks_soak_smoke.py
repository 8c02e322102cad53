"""Keeps the soak benchmark runnable: tiny scale (200 feeds, 20 s), the real service subprocess.

It measures nothing; it proves that the soak server misbehaves as it says, that the service survives
every mode, records each one, exits 0 on SIGTERM, and that the report's arithmetic is right.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import gaps, schedule_report, slope_per_hour
from benchmarks.soakserver import MISBEHAVING, soak_modes
from tests.benchrun import run_benchmark

ERRORS = {"error", "throttle", "bomb", "slowloris", "hang", "chunked", "lying", "html", "loop"}


def test_modes_are_seeded_and_a_fifth_misbehaves() -> None:
    modes = soak_modes(2000, seed=1)
    assert modes == soak_modes(2000, seed=1) != soak_modes(2000, seed=2)
    assert sum(m != "ok" for m in modes) == 400
    assert {m for m in modes if m != "ok"} == set(MISBEHAVING)


def test_schedule_report_measures_lateness_against_interval_plus_jitter() -> None:
    times = {"0": [0.0, 60.0, 135.0, 220.0], "1": [5.0, 40.0], "2": [100.0]}
    report = schedule_report(times, ["ok", "ok", "ok", "error"], interval=60.0, tick=2.0)
    assert gaps([3.0, 1.0, 6.0]) == [2.0, 3.0]
    assert report["gaps"] == 4 and report["never_polled"] == 0
    assert report["early"] == 1  # the 35 s gap
    assert report["max_lateness_s"] == 10.0  # 85 s against 75 s
    assert report["on_time_fraction"] == 0.75
    assert slope_per_hour([(0.0, 100.0), (1800.0, 101.0), (3600.0, 102.0)]) == pytest.approx(2.0)


@pytest.mark.timeout(180)
def test_soak_runs_tiny_and_every_mode_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    argv = ["--minutes", "0.33", "--feeds", "200", "--hosts", "20", "--interval", "10",
            "--min-interval", "5", "--timeout", "2", "--slow-delay", "1", "--retry-after", "30",
            "--host-delay", "0", "--articles", "0.02", "--sample", "2", "--quiet",
            "--json", str(out)]
    done = run_benchmark("soak", argv, timeout=170)
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["exit_code"] == 0
    assert result["polls"] >= 200 and result["memory"]["samples"] >= 3
    assert result["schedule"]["never_polled"] == 0 and result["healthy_items_stored"] > 0
    for mode, row in result["misbehaving"].items():
        assert row["requests"] >= 1, mode
        if mode in ERRORS:
            assert row["recorded"] == {"error": row["feeds"]}, (mode, row)
            assert row["last_error"].startswith(("fetch: ", "parse: ")), (mode, row)
    gone = result["misbehaving"]["gone"]
    assert gone["recorded"] == {"gone": gone["feeds"]} and gone["max_requests_per_feed"] == 1
    assert "ran " in done.stdout and "RSS MiB every sample" in done.stdout
