"""`aggregator import` as a user runs it (a subprocess): a bad file is one line on stderr naming
file and line, exit status 3, nothing imported; malformed values and deep nesting fail in
memory bounded by one item, not by the file (peak RSS of a child, no timing); an archive
exported from SQLite imports into PostgreSQL and exports back byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.bounds import INDEXED_TEXT_BYTES
from storage.records import ExportFilter
from storage.store import Store
from tests.importfiles import HEADER, item, sighting, write_json, write_jsonl

ROOT = Path(__file__).parent.parent
MiB = 1 << 20


def aggregator(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "aggregator", "--database", database, *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, where its error is)."""
    good = [item(i) for i in range(3)]
    deep = "[" * 100_000 + "]" * 100_000
    lines = [json.dumps({"format_version": 1} | rec) for rec in good]
    files = {
        "integer beyond 64 bits": (write_jsonl(tmp_path / "big.jsonl",
                                               [*good, item(3, article_attempts=2**70)]), "line 4"),
        "deep nesting, JSON Lines": ('{"format_version": 1, "id": ' + deep + "}\n", "line 1"),
        "deep nesting, JSON": (HEADER + '"items":[\n{"id": ' + deep + "}]}\n", "line 2"),
        "a 5,000-digit integer": (lines[0] + '\n{"format_version": 1, "x": ' + "9" * 5000 + "}\n",
                                  "line 2"),
        "an unterminated string": (HEADER + '"items":[\n{"id": "abc\n,{}]}\n', "line 2"),
        "a NaN seq": (lines[0] + "\n" + lines[1].replace('"seq": 1', '"seq": NaN'), "line 2"),
    }  # fmt: skip
    out: dict[str, tuple[Path, str]] = {}
    for n, (name, (content, where)) in enumerate(files.items()):
        path = content if isinstance(content, Path) else tmp_path / f"bad{n}.txt"
        if not isinstance(content, Path):
            path.write_text(content, encoding="utf-8")
        out[name] = (path, where)
    return out


@pytest.mark.parametrize("name", ["integer beyond 64 bits", "deep nesting, JSON Lines",
                                  "deep nesting, JSON", "a 5,000-digit integer",
                                  "an unterminated string", "a NaN seq"])  # fmt: skip
def test_a_bad_file_is_one_line_and_status_3(store_url: str, tmp_path: Path, name: str) -> None:
    seeded = aggregator(store_url, "import", str(write_jsonl(tmp_path / "seed.jsonl", [item(99)])))
    assert seeded.returncode == 0, seeded.stderr
    path, where = bad_files(tmp_path)[name]
    done = aggregator(store_url, "import", str(path))
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"import: {path}: {where}"), done.stderr
    with Store.open(store_url) as store:
        assert [i["id"] for i in store.iter_items(ExportFilter())] == [item(99)["id"]]


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    done = aggregator(f"sqlite:///{tmp_path / 'a.db'}", "import", str(tmp_path / "none.jsonl"))
    assert done.returncode == 2, done.stderr


# -- memory ----------------------------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
import storage.export
from storage.errors import ArchiverError
from storage.store import Store
def kib(field):
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0])
storage.export.MAX_ITEM_CHARS = int(sys.argv[3])
with Store.open(sys.argv[1]) as store:
    before = kib("VmRSS")
    try:
        print(store.import_file(Path(sys.argv[2])), file=sys.stderr)
    except ArchiverError as exc:
        print(exc, file=sys.stderr)
    print(kib("VmHWM") - before)
"""
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.


def peak_growth(database: str, path: Path, limit: int) -> tuple[float, str]:
    """How far the child's peak RSS (MiB) rose above its resident size once the store was
    open, and its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", CHILD, database, str(path), str(limit)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip()) / 1024, done.stderr.strip()


def filler(size: int) -> str:
    """About ``size`` characters of good items, one per line, each preceded by a comma."""
    one = "," + json.dumps(item(1, summary="s" * 1000)) + "\n"
    return one * (size // len(one))


def test_a_malformed_value_does_not_read_the_rest_of_the_file(tmp_path: Path) -> None:
    """The exporter writes one item per line, so an unterminated string meets a line end:
    the error is found there, not after buffering the 48 MB that follow."""
    path = tmp_path / "bad.json"
    path.write_text(HEADER + '"items":[\n{"id": "abc\n' + filler(48 * MiB) + "]}\n", "utf-8")
    growth, stderr = peak_growth(f"sqlite:///{tmp_path / 'a.db'}", path, 64 * MiB)
    assert stderr.startswith(f"import: {path}: line 2: invalid or truncated JSON"), stderr
    assert growth < 16, growth


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_a_value_that_never_ends_costs_one_item_at_most(tmp_path: Path, form: str) -> None:
    """A string open to the end of a 48 MB file without a line end: refused once it passes
    the per-item limit (4 MiB here), so memory follows the limit, not the file."""
    path = tmp_path / f"endless.{form}"
    start = HEADER + '"items":[{"id": "' if form == "json" else '{"format_version": 1, "id": "'
    path.write_text(start + "x" * (48 * MiB), "utf-8")
    growth, stderr = peak_growth(f"sqlite:///{tmp_path / 'a.db'}", path, 4 * MiB)
    assert stderr.startswith(f"import: {path}: line 1: "), stderr
    assert "4,194,304 characters" in stderr, stderr
    assert growth < 24, growth


def test_a_big_good_file_imports_in_bounded_memory(
    store_url_factory: Callable[[str], str], store_url: str, tmp_path: Path
) -> None:
    """One transaction, yet memory is a batch's: 4,000 items (32 MB) raise the peak no more
    than 1,000 items (8 MB) do, give or take a few MiB of caches filling."""
    backend = "postgres" if store_url.startswith("postgresql") else "sqlite"
    growth = []
    for count in (1000, 4000):
        records = [item(i, summary="s" * 8000) for i in range(count)]
        path = write_json(tmp_path / f"good-{count}.json", records)
        used, stderr = peak_growth(store_url_factory(backend), path, 64 * MiB)
        assert f"items_added={count}" in stderr, stderr
        growth.append(used)
    print(f"peak RSS growth (MiB) at 1,000 and 4,000 items: {growth}")
    assert path.stat().st_size > 30 * MiB
    assert growth[1] - growth[0] < 10, growth


# -- SQLite -> PostgreSQL --------------------------------------------------------------------


def awkward_items() -> list[dict[str, Any]]:
    """What SQLite stores and PostgreSQL must too: NUL, astral characters, year 1 in UTC, the
    int4 top, offsets, indexed values at their bound, a story seen in two feeds."""
    long_key = "k" + "é" * ((INDEXED_TEXT_BYTES - 1) // 2)
    one = item(1, title="NUL\x00 and 🦜", published="0001-01-01T00:00:00+00:00",
               updated="2026-06-01T12:00:00-09:30", article_attempts=2**31 - 1,
               sightings=[sighting("g1"), sighting(long_key, feed="https://b.example/feed")])
    one["revisions"] = [one["revisions"][0] | {"seq": 2**31 - 1}]
    return [one, item(2, authors=["\u0000x", "Ω"])]  # fmt: skip


@pytest.mark.postgres
def test_an_archive_exported_from_sqlite_imports_into_postgresql(
    store_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    sqlite, postgres = store_url_factory("sqlite"), store_url_factory("postgres")
    loaded = aggregator(sqlite, "import", str(write_jsonl(tmp_path / "in.jsonl", awkward_items())))
    assert loaded.returncode == 0, loaded.stderr
    exported = tmp_path / "sqlite.jsonl"
    assert aggregator(sqlite, "export", "--output", str(exported)).returncode == 0
    moved = aggregator(postgres, "import", str(exported))
    assert moved.returncode == 0, moved.stderr
    assert "2 items added" in moved.stdout, moved.stdout
    back = tmp_path / "postgres.jsonl"
    assert aggregator(postgres, "export", "--output", str(back)).returncode == 0
    assert back.read_text("utf-8") == exported.read_text("utf-8")
