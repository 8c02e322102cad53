"""Composed YAML nodes → plain data that remembers the line of every value, within the bounds.

Shared by both readers of the configuration (``yamlread``: ruamel's composer; ``yamlfast``:
libyaml's events), so that aliases, merges, duplicate keys and tags are judged by one piece of
code whichever parser ran. A node is anything with ruamel's and PyYAML's node shape: ``id``
("scalar", "sequence", "mapping"), ``tag``, ``value`` and ``start_mark.line`` (0-based).
Imports no parser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = frozenset(CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
STR, MAP, SEQ, MERGE = CORE + "str", CORE + "map", CORE + "seq", CORE + "merge"

# A scalar whose tag is not !!str becomes a value through the reader's constructor, which turns
# a bad one into ``Refused`` itself (its errors differ between parsers).
Construct = Callable[[Any, int], Any]


class LineDict(dict[str, Any]):
    """A mapping that knows the (1-based) line of each of its keys."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}


class LineList(list[Any]):
    """A sequence that knows the (1-based) line of each of its items."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class Refused(Exception):
    """The file breaks a bound or a rule of ours: the message goes after ``file:line: ``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class Alias:
    """Where an alias was written: the composer shares the anchored node, this keeps the line."""

    __slots__ = ("anchor", "line", "node")

    def __init__(self, node: Any, line: int, anchor: str) -> None:
        self.node, self.line, self.anchor = node, line, anchor


class Builder:
    """Composed nodes → plain data; every alias is expanded as a copy, within the budget."""

    def __init__(self, construct: Construct, budget: int, max_depth: int) -> None:
        self._construct = construct
        self._alias_weight = 0
        self._budget = budget
        self._max_depth = max_depth

    def build(self, node: Any, depth: int, via: Alias | None) -> Any:
        """``via`` is the alias that led here, if any: what it expands is counted and named."""
        if isinstance(node, Alias):
            via = via or node
            node = node.node
        line = via.line if via else node.start_mark.line + 1
        if depth > self._max_depth:  # an alias inside its own anchor loops until here
            raise Refused(line, f"YAML nested deeper than {self._max_depth} levels (a recursive "
                                "alias?)")
        if via is not None:
            self._count(node, via)
        tag, kind = str(node.tag), node.id
        if kind == "mapping" and tag == MAP:
            return self._mapping(node, depth, via)
        if kind == "sequence" and tag == SEQ:
            items = LineList()
            for item in node.value:
                items.append(self.build(item, depth + 1, via))
                items.lines.append(_line(item, via))
            return items
        if kind == "scalar" and tag in SCALAR_TAGS:
            return node.value if tag == STR else self._construct(node, line)
        raise Refused(line, f"YAML tag {_short(tag)} is not allowed (plain values, lists and "
                            "mappings only)")

    def _count(self, node: Any, via: Alias) -> None:
        self._alias_weight += 1 + (len(node.value) // 16 if node.id == "scalar" else 0)
        if self._alias_weight > self._budget:
            raise Refused(via.line, f"YAML aliases (*{via.anchor}) expand to more than "
                                    f"{self._budget:,} values")

    def _mapping(self, node: Any, depth: int, via: Alias | None) -> LineDict:
        out = LineDict()
        merges: list[Any] = []
        for key_node, value_node in node.value:
            key_line = _line(key_node, via)
            key_plain = key_node.node if isinstance(key_node, Alias) else key_node
            if str(key_plain.tag) == MERGE:
                merges.append(value_node)
                continue
            if key_plain.id != "scalar" or str(key_plain.tag) not in SCALAR_TAGS:
                raise Refused(key_line, "a YAML key must be a plain value")
            key = str(key_plain.value)
            if key in out:
                raise Refused(key_line, f"duplicate key {key!r} (first at line {out.lines[key]})")
            out[key] = self.build(value_node, depth + 1, via)
            out.lines[key] = key_line
        for merge in merges:
            self._merge(out, merge, depth, via)
        return out

    def _merge(self, out: LineDict, merge: Any, depth: int, via: Alias | None) -> None:
        """``<<: *defaults`` (or a list of them): keys written out win, earlier merges win."""
        value = self.build(merge, depth + 1, via)
        sources = value if isinstance(value, LineList) else [value]
        for source in sources:
            if not isinstance(source, LineDict):
                raise Refused(_line(merge, via), "'<<' must merge a mapping or a list of them")
            for key, item in source.items():
                if key not in out:
                    out[key] = item
                    out.lines[key] = source.lines[key]


def _line(node: Any, via: Alias | None) -> int:
    if via is not None:
        return via.line
    return node.line if isinstance(node, Alias) else int(node.start_mark.line) + 1


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(CORE) if tag.startswith(CORE) else tag
