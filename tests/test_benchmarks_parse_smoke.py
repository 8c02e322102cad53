"""Keeps benchmarks/parse_cpu.py runnable: tiny scale; it measures nothing here."""

from __future__ import annotations

from tests.benchrun import run_benchmark


def test_parse_benchmark_parses_every_feed_at_tiny_scale() -> None:
    argv = ["--feeds", "3", "--entries", "4", "--rounds", "1"]
    proc = run_benchmark("parse_cpu", argv)
    assert "3 feeds, 12 entries" in proc.stdout, proc.stdout
    assert "parse_safely:" in proc.stdout and "parse_feed:" in proc.stdout, proc.stdout
