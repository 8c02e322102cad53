"""Reads the configuration file's YAML into plain data that remembers the line of every value.

The file is written by an operator, yet a careless copy must not hurt the process (issue 11): it
is read up to ``MAX_CONFIG_BYTES`` and composed up to ``MAX_NODES`` nodes and ``MAX_DEPTH``
levels; what aliases repeat may weigh at most ``MAX_ALIAS_WEIGHT`` plus the document's own count
of values (a value weighs 1, plus 1 per 16 characters: a 1 KB billion-laughs file otherwise
expands to gigabytes once copied, while ``<<: *common`` in every feed stays well inside); only the
YAML 1.2 core tags are read (``!!python/object`` and custom tags are refused); a duplicate key is
refused with both lines.

ruamel's safe composer is used, not its round-trip loader: that one joins a run of comment lines
by repeated string concatenation, quadratic in their number (160k comment lines took 99 s).
Reads one file; no network, no database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigError

__all__ = ["MAX_ALIAS_WEIGHT", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_NODES", "LineDict",
           "LineList", "load_yaml", "read_config"]

MAX_CONFIG_BYTES = 10 * 2**20  # 10 MiB: room for MAX_NODES values and long comments
MAX_NODES = 500_000  # ruamel composes about 25,000 nodes a second: 20 s at most
MAX_DEPTH = 64  # a configuration needs 6
MAX_ALIAS_WEIGHT = 100_000  # reached through aliases, beyond the document's own values

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MERGE = _CORE + "merge"


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


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _Alias:
    """Where an alias was written: the composer shares the anchored node, this keeps the line."""

    __slots__ = ("anchor", "line", "node")

    def __init__(self, node: Node, line: int, anchor: str) -> None:
        self.node, self.line, self.anchor = node, line, anchor


class _BoundedComposer(Composer):
    """ruamel's composer, counting nodes and levels as it goes (the file is refused at once)."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # YAML allows it: an alias names the latest anchor
        self.nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES:,} YAML values; split the file")
        if self.depth >= MAX_DEPTH:
            raise _Refused(line, f"YAML nested deeper than {MAX_DEPTH} levels")
        node = super().compose_node(parent, index)
        if isinstance(event, AliasEvent):
            return _Alias(node, line, str(event.anchor))
        return node


def read_config(file: Path) -> str:
    """The file's text, refused past ``MAX_CONFIG_BYTES`` before it is parsed at all."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        limit = MAX_CONFIG_BYTES // 2**20
        raise ConfigError(f"{file}: larger than {limit} MiB, the limit for a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text ({exc.reason})") from None


def load_yaml(text: str, file: Path) -> Any:
    """Plain data (``LineDict``, ``LineList``, scalars), or None for an empty document."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _BoundedComposer
    try:
        root = yaml.compose(text)
        budget = MAX_ALIAS_WEIGHT + yaml.composer.nodes
        return None if root is None else _Builder(yaml, budget).build(root, 0, None)
    except _Refused as exc:
        raise ConfigError(f"{file}:{exc.line}: {exc}") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: invalid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:  # the reader's errors (control characters) carry no mark
        raise ConfigError(f"{file}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # a safety net: the depth bounds above come first
        raise ConfigError(f"{file}: YAML nested too deeply") from None


class _Builder:
    """Composed nodes → plain data; every alias is expanded as a copy, within the budget."""

    def __init__(self, yaml: YAML, budget: int) -> None:
        self._constructor = yaml.constructor
        self._alias_weight = 0
        self._budget = budget

    def build(self, node: Node | _Alias, depth: int, via: _Alias | None) -> Any:
        """``via`` is the alias that led here, if any: what it expands is counted and named."""
        if isinstance(node, _Alias):
            via = via or node
            node = node.node
        line = via.line if via else node.start_mark.line + 1
        if depth > MAX_DEPTH:  # an alias inside its own anchor loops until here
            raise _Refused(line, f"YAML nested deeper than {MAX_DEPTH} levels (a recursive alias?)")
        if via is not None:
            self._count(node, via)
        tag = str(node.tag)
        if isinstance(node, MappingNode) and tag == _CORE + "map":
            return self._mapping(node, depth, via)
        if isinstance(node, SequenceNode) and tag == _CORE + "seq":
            items = LineList()
            for item in node.value:
                items.append(self.build(item, depth + 1, via))
                items.lines.append(_line(item, via))
            return items
        if isinstance(node, ScalarNode) and tag in _SCALAR_TAGS:
            return self._scalar(node, line)
        raise _Refused(line, f"YAML tag {_short(tag)} is not allowed (plain values, lists and "
                             "mappings only)")

    def _count(self, node: Node, via: _Alias) -> None:
        self._alias_weight += 1 + (len(node.value) // 16 if isinstance(node, ScalarNode) else 0)
        if self._alias_weight > self._budget:
            raise _Refused(via.line, f"YAML aliases (*{via.anchor}) expand to more than "
                                     f"{self._budget:,} values")

    def _mapping(self, node: MappingNode, depth: int, via: _Alias | None) -> LineDict:
        out = LineDict()
        merges: list[Node | _Alias] = []
        for key_node, value_node in node.value:
            key_line = _line(key_node, via)
            key_plain = key_node.node if isinstance(key_node, _Alias) else key_node
            if str(key_plain.tag) == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_plain, ScalarNode) or str(key_plain.tag) not in _SCALAR_TAGS:
                raise _Refused(key_line, "a YAML key must be a plain value")
            key = str(key_plain.value)
            if key in out:
                raise _Refused(key_line, f"duplicate key {key!r} (first at line {out.lines[key]})")
            out[key] = self.build(value_node, depth + 1, via)
            out.lines[key] = key_line
        for merge in merges:
            self._merge(out, merge, depth, via)
        return out

    def _merge(self, out: LineDict, merge: Node | _Alias, depth: int, via: _Alias | None) -> None:
        """``<<: *defaults`` (or a list of them): keys written out win, earlier merges win."""
        value = self.build(merge, depth + 1, via)
        sources = value if isinstance(value, LineList) else [value]
        for source in sources:
            if not isinstance(source, LineDict):
                raise _Refused(_line(merge, via), "'<<' must merge a mapping or a list of them")
            for key, item in source.items():
                if key not in out:
                    out[key] = item
                    out.lines[key] = source.lines[key]

    def _scalar(self, node: ScalarNode, line: int) -> Any:
        if str(node.tag) == _CORE + "str":
            return node.value
        try:
            return self._constructor.construct_object(node)
        except (ValueError, YAMLError) as exc:  # e.g. an int of more than 4,300 digits
            raise _Refused(line, f"bad YAML value: {str(exc).splitlines()[0][:200]}") from None


def _line(node: Node | _Alias, via: _Alias | None) -> int:
    if via is not None:
        return via.line
    return node.line if isinstance(node, _Alias) else int(node.start_mark.line) + 1


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
