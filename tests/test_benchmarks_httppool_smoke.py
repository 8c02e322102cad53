"""Keeps benchmarks/httppool.py runnable: tiny scale, this tree only; it measures nothing here."""

from __future__ import annotations

import pytest

from tests.benchrun import run_benchmark


@pytest.mark.slow
def test_httppool_benchmark_polls_three_passes_at_tiny_scale() -> None:
    argv = ["--feeds", "4", "--hosts", "4", "--latency", "0", "--repeat", "1", "--against", ""]
    proc = run_benchmark("httppool", argv)
    out = proc.stdout  # one line per pass with the outcomes the client saw, one for the process
    assert "{'200': 4}" in out and out.count("{'304': 4}") == 2, out
    assert "this tree (AsyncioBackend)" in out and "peak RSS" in out, out  # our transport
