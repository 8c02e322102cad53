"""Keeps the benchmarks runnable: the loopback feed server behaves; the poll benchmark runs tiny.

The benchmark itself measures nothing here; this only proves that it starts, polls and reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from benchmarks.feedserver import Catalog, FeedServer, ServerSpec, feed_modes
from benchmarks.poll_timeline import summarize
from tests.benchrun import run_benchmark


def test_feed_server_spreads_hosts_gzips_and_answers_304() -> None:
    with (
        FeedServer(feeds=6, entries=3, latency=0.0, hosts=3) as server,
        httpx.Client(trust_env=False) as client,
    ):
        assert len({urlsplit(u).hostname for u in server.urls}) == 3
        assert {urlsplit(u).port for u in server.urls} == {server.port}
        first = client.get(server.urls[4])
        assert first.headers["content-encoding"] == "gzip"
        assert first.text.count("<item>") == 3
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        url = server.urls[4]
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert (
            client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        )
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        assert server.stats()["status"] == {"200": 2, "304": 2}


def test_feed_server_misbehaving_feeds_are_the_ones_it_says() -> None:
    options = {"error_fraction": 0.25, "throttle_fraction": 0.25, "retry_after": 7}
    with (
        FeedServer(feeds=8, entries=2, latency=0.0, hosts=2, **options) as server,
        httpx.Client(trust_env=False) as client,
    ):
        answers = [client.get(url) for url in server.urls]
    expected = {"ok": 200, "error": 500, "throttle": 429}
    assert [r.status_code for r in answers] == [expected[m] for m in server.modes]
    assert sorted(server.modes).count("error") == 2
    assert all(r.headers["retry-after"] == "7" for r in answers if r.status_code == 429)


def test_growing_feeds_publish_new_entries_over_time() -> None:
    catalog = Catalog(ServerSpec(feeds=2, entries=3, grow_every=10.0), port=1, start=1000.0)
    before, later = catalog.get(0, 1000.0), catalog.get(0, 1025.0)
    assert later.etag != before.etag and later.last_modified > before.last_modified
    assert b"urn:bench:0:4</guid>" in later.plain and b"urn:bench:0:4<" not in before.plain
    assert later.plain.count(b"<item>") == 3


def test_feed_modes_are_deterministic_fractions() -> None:
    spec = ServerSpec(feeds=100, slow_fraction=0.1, error_fraction=0.05)
    assert feed_modes(spec) == feed_modes(spec)
    assert feed_modes(spec).count("slow") == 10 and feed_modes(spec).count("error") == 5


@pytest.mark.slow
def test_poll_benchmark_runs_at_tiny_scale(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = [
        "--feeds",
        "10",
        "--entries",
        "3",
        "--hosts",
        "3",
        "--latency",
        "0.005",
        "--systems",
        "ours",
        "--json",
        str(out),
    ]
    proc = run_benchmark("poll", argv, timeout=60)
    assert "ours (SQLite)" in proc.stdout and "items/s" in proc.stdout
    first, second = json.loads(out.read_text())["runs"][0]["passes"]
    assert (first["new_items"], first["server"]) == (30, {"200": 10})
    assert (second["new_items"], second["server"]) == (0, {"304": 10})
    assert first["wall"] > 0 and first["peak_rss_mib"] > 0


def _reader_or_skip() -> None:
    """reader (and sgmllib3k, which its feedparser needs) come with the `bench` extra only."""
    pytest.importorskip("reader", reason="reader is not installed (pip install '.[bench]')")
    pytest.importorskip("sgmllib", reason="sgmllib3k is not installed (pip install '.[bench]')")


def _against_reader(tmp_path: Path, *argv: str) -> tuple[str, dict[str, Any]]:
    """The poll benchmark, ours and reader, at tiny scale: what it printed and its figures."""
    _reader_or_skip()
    out = tmp_path / "figures.json"
    argv = (*argv, "--latency", "0", "--systems", "ours,reader", "--json", str(out))
    proc = run_benchmark("poll", argv)
    figures: dict[str, Any] = json.loads(out.read_text())
    return proc.stdout, figures


def _passes(figures: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {run["name"]: run["passes"] for run in figures["runs"]}


@pytest.mark.slow
def test_poll_benchmark_reader_half_runs_whole_processes(tmp_path: Path) -> None:
    """The reader half, as the benchmark runs it: a reader API change must not break it silently."""
    printed, figures = _against_reader(tmp_path, "--feeds", "4", "--entries", "2", "--hosts", "4")
    assert "against reader, whole processes" in printed
    runs = _passes(figures)
    first, second = runs["reader"]
    assert (first["new_items"], first["server"]) == (8, {"200": 4})
    assert (second["new_items"], second["server"]) == (0, {"304": 4})
    assert first["cpu"] > 0 and first["peak_rss_mib"] > 0 and first["startup"] > 0
    assert runs["ours (SQLite)"][0]["new_items"] == 8


@pytest.mark.slow
def test_poll_benchmark_repeats_rounds_on_fresh_databases(tmp_path: Path) -> None:
    """Each round starts from empty archives (its first pass finds every item new again) and the
    report ends with each ratio's median over the rounds."""
    printed, figures = _against_reader(tmp_path, "--feeds", "3", "--entries", "2", "--hosts", "3",
                                       "--repeat", "2")  # fmt: skip
    assert "round 2 of 2" in printed
    assert "ours (SQLite) against reader, median of 2 rounds" in printed
    rounds = figures["rounds"]
    assert len(rounds) == 2
    for one in rounds:
        runs = _passes(one)
        assert [p["new_items"] for p in runs["ours (SQLite)"]] == [6, 0]
        assert [p["new_items"] for p in runs["reader"]] == [6, 0]


def test_grown_feeds_gain_one_entry_each_and_the_others_stay_unchanged() -> None:
    with FeedServer(feeds=10, entries=3, latency=0, hosts=2) as server, httpx.Client() as client:
        before = {url: client.get(url).headers["ETag"] for url in server.urls}
        grown = server.grow(0.3)
        after = {url: client.get(url) for url in server.urls}
    assert len(grown) == 3
    changed = [i for i, url in enumerate(server.urls) if after[url].headers["ETag"] != before[url]]
    assert changed == grown
    for i in grown:
        body = after[server.urls[i]].text
        assert body.count("<item>") == 3 and f"/articles/{i}/3.html" in body  # the new one


@pytest.mark.slow
def test_poll_benchmark_steady_pass_finds_the_grown_feeds_new_entries(tmp_path: Path) -> None:
    printed, figures = _against_reader(tmp_path, "--feeds", "4", "--entries", "2", "--hosts", "4",
                                       "--steady", "0.5")  # fmt: skip
    assert "steady pass ×" in printed
    runs = _passes(figures)
    for name in ("ours (SQLite)", "reader"):
        assert [p["new_items"] for p in runs[name]] == [8, 0, 2], name
    assert runs["reader"][2]["server"] == {"200": 2, "304": 2}


@pytest.mark.slow
def test_poll_benchmark_in_process_mode_runs(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = ["--in-process", "--feeds", "4", "--entries", "2", "--hosts", "2", "--latency", "0",
            "--systems", "ours", "--json", str(out)]  # fmt: skip
    run_benchmark("poll", argv)
    first, second = json.loads(out.read_text())["runs"][0]["passes"]
    assert (first["new_items"], first["server"]) == (8, {"200": 4})
    assert (second["new_items"], second["server"]) == (0, {"304": 4})


def test_timeline_summary_counts_only_batches_that_wrote() -> None:
    raw = {"end": 3.0, "status": 0, "responses": [0.5, 2.0, 1.0],
           "batches": [[0.6, 1.1, 4, 0.3], [1.2, 2.2, 6, 0.5], [2.5, 2.6, 0, 0.0]]}  # fmt: skip
    got = summarize(raw)
    assert (got["first_response"], got["last_response"], got["batches"]) == (0.5, 2.0, 2)
    assert (got["polls_written"], got["writer_span"], got["writer_busy"]) == (10, 1.6, 1.5)
    assert got["writer_cpu"] == 0.8


@pytest.mark.slow
def test_poll_timeline_runs_at_tiny_scale(tmp_path: Path) -> None:
    out = tmp_path / "timeline.json"
    argv = ["--feeds", "4", "--entries", "2", "--latency", "0", "--json", str(out)]
    proc = run_benchmark("poll_timeline", argv)
    assert "writer span" in proc.stdout
    first, second = json.loads(out.read_text())
    assert (first["pass"], first["polls_written"], first["status"]) == ("first", 4, 0)
    assert first["last_response"] >= first["first_response"] > 0
    assert first["writer_cpu"] > 0 and first["writer_busy"] <= first["end"]
    assert (second["pass"], second["polls_written"], second["status"]) == ("second", 4, 0)


@pytest.mark.slow
def test_steady_write_benchmark_runs_at_tiny_scale() -> None:
    proc = run_benchmark("steady", ["--feeds", "2", "--known", "3", "--article-kb", "1",
                                    "--rounds", "2"])  # fmt: skip
    assert "apply_polls of 2 changed feeds" in proc.stdout and "best" in proc.stdout
    [written] = [line for line in proc.stdout.splitlines() if line.startswith("MB written")]
    assert len(written.split(":")[1].split()) == 2  # one figure per round
