"""Pydantic's validation errors in the words of a person editing YAML (issue 13).

Pydantic speaks of Python types ("valid tuple", "instance of FeedEntry"); a user wrote YAML, so
each message says what was expected in YAML terms, what was found, and for an unknown key the
nearest known one ("did you mean `interval`?").
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

LIST = "a list (one `- item` per line, or [a, b])"
MAPPING = "a mapping of settings (`key: value` lines)"


def message(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    """One error's message, without the file, line and key (the caller puts them first)."""
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "extra_forbidden":
        return unknown_key(str(loc[-1]), known_keys(root, loc[:-1]))
    if kind == "missing":
        return "required key is missing"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        if loc[:1] == ("feeds",) and len(loc) == 2 and isinstance(value, str):
            return f"expected `- url: {value}` (a feed is a mapping with a `url:` key)"
        return f"expected {MAPPING}, got {found(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected {LIST}, got {found(value)}"
    return _scalar(kind, error, value)


def _scalar(kind: str, error: Mapping[str, Any], value: Any) -> str:
    ctx = error.get("ctx") or {}
    if kind in ("string_type", "string_sub_type"):
        return f"expected text, got {found(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {found(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {found(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {found(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {found(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {found(value)}"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}, got {found(value)}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {found(value)}"
    return str(error["msg"]).removeprefix("Value error, ")


def found(value: Any) -> str:
    """What the YAML held, as its author would name it."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:59] + "…"
        return f"the text {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def unknown_key(key: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if hint:
        return f"unknown key; did you mean `{hint[0]}`?"
    return f"unknown key (known here: {', '.join(sorted(known))})" if known else "unknown key"


def known_keys(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys the model at ``loc`` (a path of keys and list indexes) accepts."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, through ``X | None`` and ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _model_in(arg)
            if model is not None:
                return model
    return None
