"""The export format's JSON Schema (``storage/schema/export-v2.json``), loaded once per process.

Apart from ``export.py`` so that the import checks can read it without importing the exporter,
which imports them (no import cycle: ``tests/test_layering.py``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        files("storage").joinpath("schema/export-v2.json").read_text("utf-8")
    )
    return loaded


def item_schema() -> dict[str, Any]:
    """``#/$defs/item`` of the export's JSON Schema."""
    item: dict[str, Any] = _schema()["$defs"]["item"]
    return item


@cache
def item_validator() -> Draft202012Validator:
    return Draft202012Validator({"$ref": "#/$defs/item", "$defs": _schema()["$defs"]})
