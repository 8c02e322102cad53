"""Keeps benchmarks/httppool.py runnable: tiny scale, this tree only; it measures nothing here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_httppool_benchmark_polls_three_passes_at_tiny_scale() -> None:
    argv = ["--feeds", "4", "--hosts", "4", "--latency", "0", "--repeat", "1", "--against", ""]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.httppool", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout  # one line per pass with the outcomes the client saw, one for the process
    assert "{'200': 4}" in out and out.count("{'304': 4}") == 2, out
    assert "this tree (AsyncioBackend)" in out and "peak RSS" in out, out  # our transport
