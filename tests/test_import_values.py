"""Import is all or nothing (issue 10 item 8), on SQLite and PostgreSQL: values that pass the
schema but not a database's columns, repeated ids and stolen sighting keys are refused with
the file, line, item and member, and the archive is left exactly as it was, whether the file
reader's check catches them before the first write or the one transaction rolls back."""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.bounds import INDEXED_TEXT_BYTES, JSON_DEPTH
from storage.errors import ExportFormatError
from storage.records import ExportFilter
from storage.store import Store
from tests.importfiles import FEED, OTHER, T, item, sighting, write_json, write_jsonl

Spoil = Callable[[dict[str, Any]], dict[str, Any]]
BAD = 550  # the spoiled item: past the first batch of 500, so a late failure is a late one


def article(**over: Any) -> dict[str, Any]:
    art: dict[str, Any] = {
        "title": "A", "text": "Text.", "html": "<p>Text.</p>", "authors": [], "published": None,
        "modified": None, "language": "en", "canonical_url": None, "image": None,
        "dateline": None, "sources": {"text": "generic"}, "extractor": "test/1",
    }  # fmt: skip
    return art | over


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def revision(rec: dict[str, Any], **over: Any) -> list[dict[str, Any]]:
    return [rec["revisions"][0] | over]


def incompressible(size: int, seed: int) -> str:
    """``size`` bytes of ASCII that PostgreSQL cannot shrink below its index limit."""
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


LONG = "x" * (INDEXED_TEXT_BYTES + 1)
YEAR1 = "0001-01-01T00:00:00"
# name -> (how the record is spoiled, what the message must say after "line 551 (item 550)")
SPOILERS: dict[str, tuple[Spoil, str]] = {
    "integer beyond 64 bits": (lambda r: r | {"article_attempts": 2**70},
                               "article_attempts: 1180591620717411303424 does not fit"),
    "seq beyond int4": (lambda r: r | {"revisions": revision(r, seq=2**31)},
                        "revisions/0/seq: 2147483648 does not fit the database's 32-bit"),
    "seq a float beyond int4": (lambda r: r | {"revisions": revision(r, seq=1e300)},
                                "revisions/0/seq: 10000000000000000525047602552044202487044"),
    "year 1 east of UTC": (lambda r: r | {"published": "0001-01-01T00:00:00+05:00"},
                           "published: 0001-01-01T00:00:00+05:00 is outside the calendar"),
    "year 9999 west of UTC": (lambda r: r | {"last_seen": "9999-12-31T23:00:00-05:00"},
                              "last_seen: 9999-12-31T23:00:00-05:00 is outside"),
    "revision time": (lambda r: r | {"revisions": revision(r, recorded_at=YEAR1 + "+00:01")},
                      "revisions/0/recorded_at: 0001-01-01T00:00:00+00:01 is outside"),
    "lone surrogate": (lambda r: r | {"title": "ok \ud800"},
                       "title: a lone surrogate (U+D800) at character 3"),
    "surrogate in a sighting": (lambda r: r | {"sightings": [sighting("k\udfff")]},
                                "sightings/0/key: a lone surrogate (U+DFFF)"),
    "surrogate in the article": (lambda r: r | {"article": article(text="\udc00")},
                                 "article: a lone surrogate (U+DC00)"),
    "NaN in the article": (lambda r: r | {"article": article(score=float("nan"))},
                           "article: nan is not a JSON number"),
    "article nested deep": (lambda r: r | {"article": article(extra=nested(JSON_DEPTH + 5))},
                            f"article: nested more than {JSON_DEPTH} levels deep"),
    "long id": (lambda r: r | {"id": LONG}, f"id: {INDEXED_TEXT_BYTES + 1} bytes, more than"),
    "long key": (lambda r: r | {"sightings": [sighting(LONG)]}, "sightings/0/key: 2601 bytes"),
    "long link": (lambda r: r | {"sightings": [sighting("k") | {"link": LONG}]},
                  "sightings/0/link: 2601 bytes"),
    "long canonical URL": (lambda r: r | {"canonical_url": "é" * 1301},
                           "canonical_url: 2602 bytes"),
    "long feed URL": (lambda r: r | {"sightings": [sighting("k", feed=LONG)]},
                      "sightings/0/feed_url: 2601 bytes"),
    "repeated seq": (lambda r: r | {"revisions": r["revisions"] * 2},
                     "revisions/1: seq 1 repeats revisions/0"),
    "repeated sighting": (lambda r: r | {"sightings": [sighting("k"), sighting("k")]},
                          "sightings/1: feed and key repeat sightings/0"),
    "keys one once NUL is gone": (lambda r: r | {"sightings": [sighting("k"), sighting("k\x00")]},
                                  "sightings/1: feed and key repeat sightings/0"),
}  # fmt: skip


def export_items(store: Store) -> list[dict[str, Any]]:
    return list(store.iter_items(ExportFilter()))


def seed(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    """An archive with three items already: an import must leave them as they are."""
    store.import_file(write_jsonl(tmp_path / "seed.jsonl", [item(i) for i in (9001, 9002, 9003)]))
    return export_items(store)


def spoiled(spoil: Spoil, count: int = 600) -> list[dict[str, Any]]:
    return [spoil(item(i)) if i == BAD else item(i) for i in range(count)]


def import_via(store: Store, how: str, path: Path, records: list[dict[str, Any]]) -> None:
    """``file``: the CLI's path (checked whole, then one transaction); ``api``: records handed
    to the store unchecked, so only the transaction stands between them and the archive."""
    if how == "api":
        store.import_items(iter(records))
    else:
        store.import_file((write_json if path.suffix == ".json" else write_jsonl)(path, records))


# the API path for the values that used to fail inside the database, half-way
CASES = [(name, "file") for name in SPOILERS] + [
    (name, "api") for name in ("integer beyond 64 bits", "seq beyond int4", "year 1 east of UTC",
                               "lone surrogate", "long key", "keys one once NUL is gone")
]  # fmt: skip


@pytest.mark.parametrize(("name", "how"), CASES)
def test_a_value_no_database_stores_refuses_the_whole_file(
    store: Store, tmp_path: Path, name: str, how: str
) -> None:
    spoil, expected = SPOILERS[name]
    before = seed(store, tmp_path)
    path = tmp_path / "bad.jsonl"
    with pytest.raises(ExportFormatError) as info:
        import_via(store, how, path, spoiled(spoil))
    message = str(info.value)
    assert "\n" not in message
    assert f"line {BAD + 1} (item {BAD})" in message, message
    assert expected in message, message
    assert message.startswith(f"import: {path}: " if how == "file" else "import: line"), message
    assert export_items(store) == before


def test_a_value_at_every_bound_imports(store: Store, tmp_path: Path) -> None:
    """The bounds are what the databases store, not guesses: every indexed text column at
    ``INDEXED_TEXT_BYTES`` of text PostgreSQL cannot compress, int4's top, year 1 in UTC."""
    edge = item(1, id=incompressible(INDEXED_TEXT_BYTES, 1),
                canonical_url=incompressible(INDEXED_TEXT_BYTES, 2),
                published="0001-01-01T00:00:00+00:00", article_attempts=2**31 - 1,
                sightings=[sighting(incompressible(INDEXED_TEXT_BYTES, 3),
                                    feed=incompressible(INDEXED_TEXT_BYTES, 4))
                           | {"link": incompressible(INDEXED_TEXT_BYTES, 5)}])  # fmt: skip
    edge["revisions"] = revision(edge, seq=2**31 - 1)
    summary = store.import_file(write_jsonl(tmp_path / "edge.jsonl", [edge]))
    assert (summary.items_added, summary.sightings_added, summary.revisions_added) == (1, 1, 1)
    [stored] = export_items(store)
    assert stored["id"] == edge["id"] and stored["published"] == edge["published"]
    assert stored["revisions"][0]["seq"] == 2**31 - 1


def test_an_integral_float_is_the_integer(store: Store, tmp_path: Path) -> None:
    """JSON does not tell 2 from 2.0, and neither does the schema: both are stored as 2."""
    rec = item(1, article_attempts=3.0)
    rec["revisions"] = revision(rec, seq=2.0)
    store.import_file(write_jsonl(tmp_path / "float.jsonl", [rec]))
    [stored] = export_items(store)
    assert (stored["article_attempts"], stored["revisions"][0]["seq"]) == (3, 2)
    assert json.dumps(stored["revisions"][0]["seq"]) == "2"


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
@pytest.mark.parametrize("first", [3, BAD - 2])  # in an earlier batch, or in the same one
def test_a_repeated_id_is_refused_naming_both_lines(
    store: Store, tmp_path: Path, first: int, suffix: str
) -> None:
    before = seed(store, tmp_path)
    records = spoiled(lambda r: r | {"id": item(first)["id"]})
    path = tmp_path / f"repeat{suffix}"
    with pytest.raises(ExportFormatError) as info:
        import_via(store, "file", path, records)
    # in the JSON form, line 1 is the header and "items":[ opens line 2
    shift = 1 if suffix == ".json" else 0
    assert f"line {BAD + 1 + shift} (item {BAD})" in str(info.value)
    assert f"the id repeats line {first + 1 + shift}" in str(info.value)
    assert export_items(store) == before


@pytest.mark.parametrize("first", [3, BAD - 2])
def test_a_sighting_key_claimed_by_two_items_is_refused(
    store: Store, tmp_path: Path, first: int
) -> None:
    before = seed(store, tmp_path)
    records = spoiled(lambda r: r | {"sightings": [sighting("mine"), sighting(f"g{first}")]})
    with pytest.raises(ExportFormatError) as info:
        import_via(store, "file", tmp_path / "steal.jsonl", records)
    message = str(info.value)
    assert f"line {BAD + 1} (item {BAD})" in message, message
    assert f"{FEED} 'g{first}' is claimed by item '{item(first)['id']}' too" in message, message
    assert export_items(store) == before


def test_a_key_the_archive_gives_another_item_stays_there(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An archive that folded two stories keeps its fold: the incoming sighting is counted,
    logged with its line, and left with the item that holds it; no item loses its sightings."""
    seed(store, tmp_path)
    newcomer = item(7, sightings=[sighting("g9001"), sighting("own", feed=OTHER)])
    with caplog.at_level(logging.WARNING, logger="storage.importer"):
        summary = store.import_file(write_jsonl(tmp_path / "fold.jsonl", [newcomer]))
    assert (summary.items_added, summary.sightings_added, summary.sightings_elsewhere) == (1, 1, 1)
    assert "line 1 (item 0): sighting https://a.example/feed 'g9001' stays with item" in caplog.text
    stored = {i["id"]: i for i in export_items(store)}
    assert [s["key"] for s in stored[newcomer["id"]]["sightings"]] == ["own"]
    assert [s["key"] for s in stored[item(9001)["id"]]["sightings"]] == ["g9001"]
    assert all(i["sightings"] for i in stored.values())


def test_a_new_item_whose_every_key_is_taken_is_refused(store: Store, tmp_path: Path) -> None:
    before = seed(store, tmp_path)
    records = [item(1), item(2, sightings=[sighting("g9002")])]
    with pytest.raises(ExportFormatError, match=r"line 2 \(item 1\).*every sighting of this item"):
        store.import_file(write_jsonl(tmp_path / "orphan.jsonl", records))
    assert export_items(store) == before


def test_nul_is_stripped_as_the_columns_strip_it(store: Store, tmp_path: Path) -> None:
    """Two ids that differ only by NUL are the one id they become: a repeat, not two items."""
    records = [item(1), item(2, id=item(1)["id"] + "\x00")]
    with pytest.raises(ExportFormatError, match="the id repeats line 1"):
        store.import_file(write_jsonl(tmp_path / "nul.jsonl", records))
    store.import_file(write_jsonl(tmp_path / "ok.jsonl", [item(3, title="a\x00b")]))
    assert [i["title"] for i in export_items(store)] == ["ab"]


def test_a_file_imports_whole_in_one_transaction(store: Store, tmp_path: Path) -> None:
    records = [item(i) for i in range(1200)]
    path = write_json(tmp_path / "many.json", records)
    summary = store.import_file(path)
    assert (summary.items_added, summary.sightings_added, summary.revisions_added) == (1200,) * 3
    again = store.import_file(path)
    assert (again.items_added, again.items_unchanged, again.sightings_added) == (0, 1200, 0)
    assert json.dumps(export_items(store)[5]["authors"], ensure_ascii=False) == '["Ана"]'
    assert export_items(store)[0]["first_seen"] == T
