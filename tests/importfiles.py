"""Generated import files for the import tests: valid items, and ways to spoil one of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FEED = "https://a.example/feed"
OTHER = "https://b.example/feed"
T = "2026-01-01T00:00:00+00:00"
HEADER = '{"format":"feed-archiver-export","version":1,"exported_at":"2026-01-02T00:00:00+00:00",'


def item(i: int, **over: Any) -> dict[str, Any]:
    """A schema-valid item numbered ``i`` (its id, guid and key derive from ``i``)."""
    rec: dict[str, Any] = {
        "id": f"{i:032x}", "feed_url": FEED, "guid": f"g{i}", "url": f"https://n.example/{i}",
        "title": f"Story {i}", "summary": f"Summary {i}", "authors": ["Ана"],
        "published": "2026-01-01T05:00:00+05:00", "updated": None, "first_seen": T,
        "last_seen": T, "changed_at": T, "content_hash": f"h{i}", "article_status": "off",
        "article_attempts": 0,
        "sightings": [sighting(f"g{i}")],
        "revisions": [{"seq": 1, "recorded_at": T, "title": f"Story {i}", "content_hash": f"h{i}"}],
    }  # fmt: skip
    rec.update(over)
    return rec


def sighting(key: str, feed: str = FEED) -> dict[str, Any]:
    return {"feed_url": feed, "guid": key, "key": key, "link": None, "first_seen": T,
            "last_seen": T}  # fmt: skip


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    lines = [json.dumps({"format_version": 1} | rec) for rec in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, records: list[dict[str, Any]]) -> Path:
    body = ",\n".join(json.dumps(rec) for rec in records)
    path.write_text(HEADER + '"items":[\n' + body + "\n]}\n", encoding="utf-8")
    return path
