"""Keeps ``benchmarks/startup.py`` runnable: every command it times answers with status 0.

It measures nothing here (no timed assertion): the figures are for a person to read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_startup_benchmark_runs_every_command() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "startup.py"), "--repeat", "1", "--feeds", "2",
         "--json"], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert [r["command"] for r in results][:5] == ["--help", "--version", "check-config",
                                                   "feeds", "stats"]  # fmt: skip
    assert all(r["status"] == 0 and r["seconds"] > 0 and r["peak_rss_mib"] > 0 for r in results)
