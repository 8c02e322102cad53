"""Keeps benchmarks/parse_cpu.py runnable: tiny scale; it measures nothing here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_parse_benchmark_parses_every_feed_at_tiny_scale() -> None:
    argv = ["--feeds", "3", "--entries", "4", "--rounds", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.parse_cpu", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 feeds, 12 entries" in proc.stdout, proc.stdout
    assert "parse_safely:" in proc.stdout and "parse_feed:" in proc.stdout, proc.stdout
