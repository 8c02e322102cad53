"""A benchmark run as its user runs it, for the smoke tests that keep ``benchmarks/`` runnable."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(module: str, argv: Sequence[str], timeout: float = 120
                  ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``python -m benchmarks.MODULE ARGV`` from the project's root; the test fails, with the end
    of what it printed, unless it exits 0."""
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc
